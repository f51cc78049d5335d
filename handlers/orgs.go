package handlers

import (
	"github.com/gofiber/fiber/v2"

	"partyledger/app"
	"partyledger/models"
)

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
