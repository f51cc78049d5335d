package handlers

import (
	"context"
	"mime"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"partyledger/app"
	"partyledger/models"
)

func (s *Server) submitClaim(c *fiber.Ctx) error {
	var req app.ClaimInput
	if err := decode(c, &req); err != nil {
		return err
	}
	// A submission takes from the member's and the client's allowances once: when
	// authWrite runs this again because the caller's copy was out of date, nothing was
	// written the first time, and the member must not pay twice for it.
	if c.Locals(keyAllowed) == nil {
		if err := s.Claims.Allow(actor(c).ID, clientIP(c)); err != nil {
			return err
		}
		c.Locals(keyAllowed, true)
	}
	claim, created, err := s.Claims.Submit(c.UserContext(), actor(c), c.Get("Idempotency-Key"), req)
	if err != nil {
		return err
	}
	if !created {
		c.Set("Idempotent-Replayed", "true")
	}
	return c.Status(fiber.StatusCreated).JSON(claim)
}

// claimList answers GET /claims and GET /approvals, which read the same filters.
func claimList(fn func(context.Context, *app.Actor, app.ClaimFilter, app.Page) (app.List[models.Claim], error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, err := page(c)
		if err != nil {
			return err
		}
		member, err := queryID(c, "member_id")
		if err != nil {
			return err
		}
		list, err := fn(c.UserContext(), actor(c), app.ClaimFilter{MemberID: member, Status: c.Query("status"), Period: c.Query("period")}, p)
		if err != nil {
			return err
		}
		return c.JSON(list)
	}
}

type batchReq struct {
	ClaimIDs []int64 `json:"claim_ids"`
	Action   string  `json:"action"`
	Reason   string  `json:"reason"`
}

func (s *Server) batchDecide(c *fiber.Ctx) error {
	var req batchReq
	if err := decode(c, &req); err != nil {
		return err
	}
	res, err := s.Claims.Batch(c.UserContext(), actor(c), req.ClaimIDs, req.Action, req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"results": res})
}

type uploadResp struct {
	ID  int64  `json:"id"`
	URL string `json:"url"`
}

// createUpload takes an evidence photo as the "file" field of a multipart form.
func (s *Server) createUpload(c *fiber.Ctx) error {
	if err := s.Uploads.Allow(actor(c).ID, clientIP(c)); err != nil {
		return err
	}
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEMultipartForm {
		return models.Errorf(models.EMediaType, "send the photo as multipart/form-data with a field named file")
	}
	fh, err := c.FormFile("file")
	if err != nil {
		return models.InvalidField("file", "is required: a JPEG, PNG or WebP photo")
	}
	if fh.Size > app.MaxUploadBytes {
		return models.Errorf(models.ETooLarge, "a photo may have at most %d MB", app.MaxUploadBytes>>20)
	}
	f, err := fh.Open()
	if err != nil {
		return models.Errorf(models.EMalformed, "the uploaded file could not be read")
	}
	defer f.Close()
	u, err := s.Uploads.Create(c.UserContext(), actor(c), f)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(uploadResp{ID: u.ID, URL: "/api/v1/uploads/" + strconv.FormatInt(u.ID, 10)})
}

func (s *Server) getUpload(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	u, rc, err := s.Uploads.Open(c.UserContext(), actor(c), id)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, u.ContentType)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderCacheControl, "private, max-age=3600")
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'")
	return c.SendStream(rc, int(u.Size))
}

func (s *Server) listPosts(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	list, err := s.Posts.List(c.UserContext(), actor(c), p)
	if err != nil {
		return err
	}
	return c.JSON(list)
}
