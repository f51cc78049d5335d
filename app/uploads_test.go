package app_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"partyledger/app"
	"partyledger/app/apptest"
)

// The filesystem store writes a photo whole under its key, readable only by the server,
// and a write that fails leaves nothing behind.
func TestFSStoreWritesWholeFilesOrNone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := app.FSStore{Dir: dir}
	listing := func(sub string) []string { t.Helper(); return apptest.Files(t, filepath.Join(dir, sub)) }
	photo := []byte("\x89PNG\r\n\x1a\n" + strings.Repeat("x", 5000))
	if err := s.Put(ctx, "uploads/2026-11/7-abc", photo); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(ctx, "uploads/2026-11/7-abc")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != string(photo) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if names := listing("uploads/2026-11"); len(names) != 1 || names[0] != "7-abc" {
		t.Fatalf("the folder holds %v, want the photo alone", names)
	}
	for _, p := range []string{"uploads", "uploads/2026-11", "uploads/2026-11/7-abc"} {
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s: %v %v (others may not read photos)", p, st.Mode(), err)
		}
	}
	// A key whose place is taken by a folder: the rename fails, and no temporary file stays.
	if err := os.Mkdir(filepath.Join(dir, "uploads/2026-11/8-taken"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "uploads/2026-11/8-taken", photo); err == nil || !strings.Contains(err.Error(), "store uploads/2026-11/8-taken") {
		t.Fatalf("a photo stored over a folder: %v", err)
	}
	if names := listing("uploads/2026-11"); len(names) != 2 {
		t.Fatalf("after a failed store the folder holds %v", names)
	}
	// Deleted, it is gone; deleting what is not there is no error.
	if err := s.Delete(ctx, "uploads/2026-11/7-abc"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, "uploads/2026-11/7-abc"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a deleted photo opens: %v", err)
	}
	if err := s.Delete(ctx, "uploads/2026-11/7-abc"); err != nil {
		t.Fatalf("deleting a missing photo: %v", err)
	}
	// A store whose folder is a file cannot write at all, and says which key.
	file := filepath.Join(t.TempDir(), "not-a-folder")
	os.WriteFile(file, nil, 0o600)
	if err := (app.FSStore{Dir: file}).Put(ctx, "uploads/2026-11/9-x", photo); err == nil || !strings.Contains(err.Error(), "store uploads/2026-11/9-x") {
		t.Fatalf("a store under a file: %v", err)
	}
}

// A photo whose upload row cannot be written (here its owner is no member: the foreign
// key refuses it) is not kept: nobody could ever read or attach it.
func TestAnUploadWithoutItsRowLeavesNoFile(t *testing.T) {
	ctx := context.Background()
	db := apptest.OpenDB(t)
	dir := t.TempDir()
	_, err := app.NewUploads(db, app.FSStore{Dir: dir}).Create(ctx, &app.Actor{ID: 424242}, strings.NewReader("\x89PNG\r\n\x1a\n"+strings.Repeat("x", 100)))
	if err == nil {
		t.Fatal("an upload of no member was stored")
	}
	var files []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	if len(files) != 0 {
		t.Fatalf("the failed upload left %v", files)
	}
}
