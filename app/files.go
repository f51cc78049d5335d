package app

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// WriteTemp writes a new file in dir through write, flushes it to disk and closes it, and
// returns its name, prefix followed by a random part and ".tmp". The file is created with
// perm (less the umask, as os.Create's is); write may change it. On any failure the file
// is removed. The caller puts the file in place (a rename or a link) and owns it from then.
// The photo store, the generated signing key and ledgerctl's reports are written so: whole,
// or not at all.
func WriteTemp(dir, prefix string, perm os.FileMode, write func(*os.File) error) (_ string, err error) {
	var f *os.File
	var name string
	for range 10 {
		name = filepath.Join(dir, fmt.Sprintf("%s%x.tmp", prefix, rand.Uint64()))
		if f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm); !errors.Is(err, os.ErrExist) {
			break
		}
	}
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(name)
		}
	}()
	if err = write(f); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	if err = f.Close(); err != nil {
		return "", err
	}
	return name, nil
}

// syncDir flushes a folder's entries (a file's new name in it) to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
