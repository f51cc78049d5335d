package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"time"

	"gorm.io/gorm"

	"partyledger/models"
)

// demoPhoto is a photo of the demo's claims.
type demoPhoto struct {
	data                []byte
	contentType, sha256 string
}

// demoPhotoCount is how many photos the demo's claims take turns with.
const demoPhotoCount = 6

// drawDemoPhotos draws the demo's photos: simple scenes in different colours, each a PNG
// of 400 by 300, the same bytes on every run.
func drawDemoPhotos() ([]demoPhoto, error) {
	palettes := [demoPhotoCount][3]color.RGBA{
		{{0xc8, 0x1e, 0x1e, 0xff}, {0xf5, 0xd0, 0x4c, 0xff}, {0xfa, 0xf3, 0xe0, 0xff}}, // 党旗红 and gold
		{{0x2f, 0x6d, 0xb5, 0xff}, {0x9c, 0xc9, 0xe8, 0xff}, {0xe8, 0xf1, 0xf8, 0xff}},
		{{0x3c, 0x8d, 0x4f, 0xff}, {0xa8, 0xd5, 0x8e, 0xff}, {0xee, 0xf6, 0xe6, 0xff}},
		{{0x8a, 0x5a, 0x2b, 0xff}, {0xe0, 0xb8, 0x7a, 0xff}, {0xfb, 0xf1, 0xe2, 0xff}},
		{{0x5b, 0x3f, 0x8c, 0xff}, {0xc2, 0xa8, 0xe6, 0xff}, {0xf3, 0xee, 0xfa, 0xff}},
		{{0x1f, 0x7a, 0x7a, 0xff}, {0x8f, 0xd6, 0xd0, 0xff}, {0xe6, 0xf7, 0xf5, 0xff}},
	}
	photos := make([]demoPhoto, 0, demoPhotoCount)
	for i, pal := range palettes {
		img := image.NewRGBA(image.Rect(0, 0, 400, 300))
		for y := 0; y < 300; y++ {
			for x := 0; x < 400; x++ {
				c := pal[2] // the sky, darker towards the top
				c.R, c.G, c.B = shade(c.R, y), shade(c.G, y), shade(c.B, y)
				switch {
				case y > 210: // the ground
					c = pal[1]
				case x > 60+i*20 && x < 200+i*20 && y > 90 && y <= 210: // a building
					c = pal[0]
				case x > 250 && x < 330 && y > 130+i*5 && y <= 210: // people in front of it
					c = color.RGBA{pal[0].R / 2, pal[0].G / 2, pal[0].B / 2, 0xff}
				}
				img.SetRGBA(x, y, c)
			}
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return nil, fmt.Errorf("demo photo: %w", err)
		}
		data := buf.Bytes()
		sum := sha256.Sum256(data)
		photos = append(photos, demoPhoto{data: data, contentType: http.DetectContentType(data), sha256: hex.EncodeToString(sum[:])})
	}
	return photos, nil
}

// shade darkens a colour channel towards the top of a 300-pixel-high picture.
func shade(v uint8, y int) uint8 { return uint8(int(v) * (200 + y/3) / 300) }

// attachDemoPhotos gives every demo claim whose rule needs evidence a photo, as an upload
// of its claimant's (evidence must be the claimant's, and a key names one upload): the
// photos taken in turn, without a draw from the demo's generator, so the rest of the demo
// stays as it was. Each photo is put in the store once and copied for the other claims
// (a hard link, where the store keeps files), before the rows that name the files.
func attachDemoPhotos(tx *gorm.DB, store BlobStore, claims []models.Claim, rules map[string]models.Rule, ts time.Time) error {
	photos, err := drawDemoPhotos()
	if err != nil {
		return err
	}
	ctx := tx.Statement.Context
	folder := "uploads/demo-" + randomHex(6) // a data folder kept from an earlier database has its own
	copier, _ := store.(interface {
		Copy(ctx context.Context, from, to string) error
	})
	first := make([]string, len(photos)) // the key each photo was first put under
	var uploads []models.Upload
	var owners []int // index into claims
	for i, c := range claims {
		if !rules[c.RuleCode].NeedsEvidence {
			continue
		}
		n := i % len(photos)
		p := photos[n]
		key := fmt.Sprintf("%s/%d-%d.png", folder, c.MemberID, i)
		var err error
		if first[n] != "" && copier != nil {
			err = copier.Copy(ctx, first[n], key)
		} else {
			err = store.Put(ctx, key, p.data)
			first[n] = key
		}
		if err != nil {
			return fmt.Errorf("demo photos: %w", err)
		}
		uploads = append(uploads, models.Upload{OwnerID: c.MemberID, ContentType: p.contentType, Size: int64(len(p.data)), SHA256: p.sha256, StorageKey: key, CreatedAt: ts})
		owners = append(owners, i)
	}
	if len(uploads) == 0 {
		return nil
	}
	if err := tx.CreateInBatches(uploads, 500).Error; err != nil {
		return fmt.Errorf("demo photos: %w", err)
	}
	evidence := make([]models.ClaimEvidence, len(uploads))
	for j, u := range uploads {
		evidence[j] = models.ClaimEvidence{ClaimID: claims[owners[j]].ID, UploadID: u.ID}
	}
	if err := tx.CreateInBatches(evidence, 500).Error; err != nil {
		return fmt.Errorf("demo photos: %w", err)
	}
	return nil
}
