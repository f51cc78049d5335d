package app

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"partyledger/models"
)

// sweptWhileOpened is a store whose Open runs after a sweep has removed the upload's
// row and file: the moment between Uploads.Open's read of the row and its open of the
// file.
type sweptWhileOpened struct {
	FSStore
	db *DB
	id int64
}

func (s sweptWhileOpened) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := s.db.W.Exec("DELETE FROM uploads WHERE id = ?", s.id).Error; err != nil {
		return nil, err
	}
	if err := s.Delete(ctx, key); err != nil {
		return nil, err
	}
	return s.FSStore.Open(ctx, key)
}

// A photo swept as it is read is not found (404), like one swept before; a photo whose
// row is there but whose file is not was lost, which is an error to log, not "no such
// upload".
func TestAPhotoWhoseFileIsGone(t *testing.T) {
	ctx := context.Background()
	db := migratedSQLite(t, insertBranch1, insertMember7)
	dir := t.TempDir()
	owner := &Actor{ID: 7, BranchID: 1}
	photo := "\x89PNG\r\n\x1a\n" + strings.Repeat("x", 100)
	store := FSStore{Dir: dir}
	uploads := NewUploads(db, store)
	lost, err := uploads.Create(ctx, owner, strings.NewReader(photo))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, filepath.FromSlash(lost.StorageKey))); err != nil {
		t.Fatal(err)
	}
	var me *models.Error
	if _, _, err := uploads.Open(ctx, owner, lost.ID); err == nil || errors.As(err, &me) {
		t.Fatalf("a photo whose file was lost: %v, want an internal error", err)
	}

	swept, err := uploads.Create(ctx, owner, strings.NewReader(photo))
	if err != nil {
		t.Fatal(err)
	}
	racing := NewUploads(db, sweptWhileOpened{FSStore: store, db: db, id: swept.ID})
	if _, _, err := racing.Open(ctx, owner, swept.ID); !errors.As(err, &me) || me.Code != models.ENotFound {
		t.Fatalf("a photo swept as it was read: %v, want not found", err)
	}
}
