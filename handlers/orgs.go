package handlers

import (
	"github.com/gofiber/fiber/v2"

	"partyledger/app"
	"partyledger/models"
)

type orgReq struct {
	ParentID *int64         `json:"parent_id" validate:"required,gt=0"`
	Kind     models.OrgKind `json:"kind" validate:"required,oneof=committee general_branch branch group"`
	Name     string         `json:"name" validate:"notblank,max=100"`
}

func (s *Server) createOrg(c *fiber.Ctx) error {
	var req orgReq
	if err := decode(c, &req); err != nil {
		return err
	}
	o, err := s.Orgs.Create(c.UserContext(), actor(c), app.OrgInput{ParentID: req.ParentID, Kind: req.Kind, Name: req.Name})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(o)
}

func (s *Server) getOrg(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	o, err := s.Orgs.Get(c.UserContext(), actor(c), id)
	if err != nil {
		return err
	}
	return c.JSON(o)
}

func (s *Server) listOrgs(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	parent, err := queryID(c, "parent_id")
	if err != nil {
		return err
	}
	list, err := s.Orgs.List(c.UserContext(), actor(c), app.OrgFilter{ParentID: parent, Kind: models.OrgKind(c.Query("kind"))}, p)
	if err != nil {
		return err
	}
	return c.JSON(list)
}

type orgPatchReq struct {
	Name     *string `json:"name" validate:"omitempty,notblank,max=100"`
	ParentID *int64  `json:"parent_id" validate:"omitempty,gt=0"`
}

func (s *Server) updateOrg(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var req orgPatchReq
	if err := decode(c, &req); err != nil {
		return err
	}
	o, err := s.Orgs.Update(c.UserContext(), actor(c), id, app.OrgPatch{Name: req.Name, ParentID: req.ParentID})
	if err != nil {
		return err
	}
	return c.JSON(o)
}
