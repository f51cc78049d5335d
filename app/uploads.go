package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"gorm.io/gorm"

	"partyledger/models"
)

// BlobStore keeps uploaded bytes. The filesystem store serves one machine; an object
// store (S3, OSS, COS) can take its place behind the same three calls.
type BlobStore interface {
	Put(ctx context.Context, key string, data []byte) error
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	Delete(ctx context.Context, key string) error
}

// FSStore keeps blobs as files under a folder.
type FSStore struct{ Dir string }

// Put writes the blob whole and durably before the upload's row is written: into a
// temporary file, flushed to disk, renamed to its key, and the rename flushed too. Else a
// power cut could leave a committed upload whose photo is empty (a new file's data and
// name reach the disk later than the database's commit).
func (s FSStore) Put(_ context.Context, key string, data []byte) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("store %s: %w", key, err)
		}
	}()
	path := filepath.Join(s.Dir, filepath.FromSlash(key))
	dir := filepath.Dir(path)
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if errors.Is(statErr, os.ErrNotExist) { // a new month's folder: its name too
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return err
		}
	}
	tmp, err := WriteTemp(dir, filepath.Base(path)+".", 0o600, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// Open reads a blob.
func (s FSStore) Open(_ context.Context, key string) (io.ReadCloser, error) {
	return os.Open(filepath.Join(s.Dir, filepath.FromSlash(key)))
}

// Delete removes a blob; one that is not there is no error.
func (s FSStore) Delete(_ context.Context, key string) error {
	if err := os.Remove(filepath.Join(s.Dir, filepath.FromSlash(key))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Copy puts a second copy of a blob under another key, as a hard link: the demo gives
// each claimant's upload of one photo a file of its own (a key names one upload) without
// writing the photo again. Unlike Put it does not flush: for seeding only.
func (s FSStore) Copy(_ context.Context, from, to string) error {
	path := filepath.Join(s.Dir, filepath.FromSlash(to))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("copy to %s: %w", to, err)
	}
	if err := os.Link(filepath.Join(s.Dir, filepath.FromSlash(from)), path); err != nil {
		return fmt.Errorf("copy to %s: %w", to, err)
	}
	return nil
}

// MaxUploadBytes is the largest evidence photo.
const MaxUploadBytes = 10 << 20

// allowedImages are recognised from the bytes, never from the name or the header.
var allowedImages = map[string]bool{"image/jpeg": true, "image/png": true, "image/webp": true}

// Uploads stores evidence photos and decides who may see them.
type Uploads struct {
	db    *DB
	store BlobStore
	limit callerLimit // uploads; the zero value: unlimited
}

// NewUploads returns the upload use cases over a blob store. Uploads (Allow) are
// unlimited until Limit is called.
func NewUploads(db *DB, store BlobStore) *Uploads { return &Uploads{db: db, store: store} }

// Limit caps uploads per member and per client IP: each may be 10 MB, and what a member
// uploads stays on the disk, so a member's account (or a script with its token) must
// not be able to fill the disk at the speed of the network.
func (s *Uploads) Limit(perMember, perIP RateLimit) *Uploads {
	s.limit = newCallerLimit(perMember, perIP)
	return s
}

// Allow takes one upload from the allowances of member and of the client IP, before
// Create. Returns ERateLimited, or nil (always, until Limit is called).
func (s *Uploads) Allow(member int64, ip string) error { return s.limit.Allow(member, ip) }

// Create stores a photo of the actor's. Returns ETooLarge or EMediaType.
func (s *Uploads) Create(ctx context.Context, a *Actor, r io.Reader) (models.Upload, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxUploadBytes+1))
	if err != nil {
		return models.Upload{}, fmt.Errorf("upload: %w", err)
	}
	if len(data) > MaxUploadBytes {
		return models.Upload{}, models.Errorf(models.ETooLarge, "a photo may have at most %d MB", MaxUploadBytes>>20)
	}
	if len(data) == 0 {
		return models.Upload{}, models.InvalidField("file", "is empty")
	}
	ct := http.DetectContentType(data)
	if !allowedImages[ct] {
		return models.Upload{}, models.Errorf(models.EMediaType, "evidence must be a JPEG, PNG or WebP photo")
	}
	sum := sha256.Sum256(data)
	now := time.Now().UTC()
	key := fmt.Sprintf("uploads/%s/%d-%s", now.Format("2006-01"), a.ID, randomHex(12))
	if err := s.store.Put(ctx, key, data); err != nil {
		return models.Upload{}, err
	}
	u := models.Upload{OwnerID: a.ID, ContentType: ct, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), StorageKey: key, CreatedAt: now.Truncate(time.Microsecond)}
	err = s.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&u).Error; err != nil {
			return err
		}
		// Audited as every state change is, under the owner's branch (the storage key is
		// not in the record: it is json:"-").
		return writeAudit(tx, &a.ID, &a.BranchID, "upload.created", "upload", u.ID, nil, u)
	})
	if err != nil {
		// The photo has no row, so nobody could ever read or attach it: it goes too (also
		// when the request's deadline is what failed the row).
		_ = s.store.Delete(context.WithoutCancel(ctx), key)
		return models.Upload{}, dbError("upload", err)
	}
	return u, nil
}

var errUploadNotFound = models.Errorf(models.ENotFound, "no such upload")

// Open returns a photo to its owner, or to whoever may see a claim that uses it.
// Returns ENotFound.
func (s *Uploads) Open(ctx context.Context, a *Actor, id int64) (models.Upload, io.ReadCloser, error) {
	var u models.Upload
	if err := s.db.R.WithContext(ctx).Take(&u, id).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return u, nil, errUploadNotFound
		}
		return u, nil, dbError("open upload", err)
	}
	if u.OwnerID != a.ID {
		var paths []string
		err := s.db.R.WithContext(ctx).Table("claim_evidence").Select("orgs.path").
			Joins("JOIN claims ON claims.id = claim_evidence.claim_id").Joins("JOIN orgs ON orgs.id = claims.branch_id").
			Where("claim_evidence.upload_id = ?", id).Pluck("orgs.path", &paths).Error
		if err != nil {
			return u, nil, dbError("open upload", err)
		}
		allowed := false
		for _, p := range paths {
			allowed = allowed || a.CanAny(p, models.RoleSecretary, models.RoleLeader)
		}
		if !allowed {
			return u, nil, errUploadNotFound
		}
	}
	rc, err := s.store.Open(ctx, u.StorageKey)
	if errors.Is(err, os.ErrNotExist) {
		// Swept as it was read (Sweep deletes the row, then the file): then it is gone.
		// A row whose file is missing is a lost photo, an error to log.
		var rows int64
		if cerr := s.db.R.WithContext(ctx).Model(&models.Upload{}).Where("id = ?", id).Count(&rows).Error; cerr == nil && rows == 0 {
			return u, nil, errUploadNotFound
		}
	}
	if err != nil {
		return u, nil, fmt.Errorf("open upload %d: %w", id, err)
	}
	return u, rc, nil
}

// UploadSweep is what one sweep of unused photos removed.
type UploadSweep struct {
	Uploads int   // unused uploads removed, row and photo
	Bytes   int64 // the size of their photos
	Strays  int   // files of the store that no upload row names, removed (Strays only)
}

// sweepBatch is how many unused uploads a sweep reads at a time.
const sweepBatch = 500

// Sweep removes the uploads that no claim uses and that are older than keep, row and
// photo: a member who uploads and never files the claim would otherwise keep the photo
// on the disk for ever. Each goes in a transaction of its own that deletes the row only
// if no claim has taken it meanwhile (a claim that takes it after the delete is refused:
// the photo is not the member's any more), audited as "upload.deleted" under its owner's
// branch, by nobody; the photo is deleted once that commits. A photo that cannot be
// deleted stays for the next sweep's Strays.
func (s *Uploads) Sweep(ctx context.Context, keep time.Duration) (UploadSweep, error) {
	var done UploadSweep
	cutoff := time.Now().UTC().Add(-keep)
	var failed error
	for after := int64(0); ; {
		var batch []struct {
			models.Upload
			BranchID int64
		}
		err := s.db.R.WithContext(ctx).Table("uploads").Select("uploads.*, members.branch_id").
			Joins("JOIN members ON members.id = uploads.owner_id").
			Where("uploads.id > ? AND uploads.created_at < ?", after, cutoff).
			Where("NOT EXISTS (SELECT 1 FROM claim_evidence e WHERE e.upload_id = uploads.id)").
			Order("uploads.id").Limit(sweepBatch).Scan(&batch).Error
		if err != nil {
			return done, dbError("sweep uploads", err)
		}
		for _, u := range batch {
			after = u.ID
			gone := false
			err := s.db.writeTx(ctx, func(tx *gorm.DB) error {
				res := tx.Exec("DELETE FROM uploads WHERE id = ? AND NOT EXISTS (SELECT 1 FROM claim_evidence e WHERE e.upload_id = ?)", u.ID, u.ID)
				if res.Error != nil || res.RowsAffected == 0 { // taken by a claim, or by another sweep
					gone = false
					return res.Error
				}
				gone = true
				return writeAudit(tx, nil, &u.BranchID, "upload.deleted", "upload", u.ID, u.Upload, nil)
			})
			if isForeignKey(err) { // a claim took it as it went
				continue
			}
			if err != nil {
				return done, dbError("sweep uploads", err)
			}
			if !gone {
				continue
			}
			done.Uploads++
			done.Bytes += u.Size
			if err := s.store.Delete(ctx, u.StorageKey); err != nil && failed == nil {
				failed = err
			}
		}
		if len(batch) < sweepBatch {
			return done, failed
		}
	}
}

// BlobLister is a BlobStore that can list its blobs, so that a sweep can find the photos
// no upload row names: FSStore.
type BlobLister interface {
	// List calls fn with the key and last change of each blob whose key begins with
	// prefix, in no particular order.
	List(ctx context.Context, prefix string, fn func(key string, changed time.Time) error) error
}

// List walks the files under the folder of prefix, which ends in "/". Temporary files
// (a Put cut short) are listed too.
func (s FSStore) List(ctx context.Context, prefix string, fn func(key string, changed time.Time) error) error {
	root := filepath.Join(s.Dir, filepath.FromSlash(prefix))
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) { // deleted as we walked
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(s.Dir, path)
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(rel), info.ModTime())
	})
	if errors.Is(err, os.ErrNotExist) { // no uploads yet
		return nil
	}
	return err
}

// Strays removes the photos of the store (when it can list them) that are older than
// keep and that no upload row names: a photo whose row never came (the server stopped
// between the two) or whose sweep could not delete it, and temporary files of a Put cut
// short. Anything younger than keep may still be on its way to its row, so it stays.
func (s *Uploads) Strays(ctx context.Context, keep time.Duration) (UploadSweep, error) {
	var done UploadSweep
	lister, ok := s.store.(BlobLister)
	if !ok {
		return done, nil
	}
	cutoff := time.Now().Add(-keep)
	var keys []string
	check := func() error {
		if len(keys) == 0 {
			return nil
		}
		var rows []string
		if err := s.db.R.WithContext(ctx).Model(&models.Upload{}).Where("storage_key IN ?", keys).Pluck("storage_key", &rows).Error; err != nil {
			return dbError("sweep uploads", err)
		}
		known := make(map[string]bool, len(rows))
		for _, k := range rows {
			known[k] = true
		}
		for _, k := range keys {
			if !known[k] {
				if err := s.store.Delete(ctx, k); err != nil {
					return err
				}
				done.Strays++
			}
		}
		keys = keys[:0]
		return nil
	}
	err := lister.List(ctx, "uploads/", func(key string, changed time.Time) error {
		if !changed.Before(cutoff) {
			return nil
		}
		keys = append(keys, key)
		if len(keys) < sweepBatch {
			return nil
		}
		return check()
	})
	if err != nil {
		return done, err
	}
	return done, check()
}
