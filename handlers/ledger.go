package handlers

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"partyledger/app"
	"partyledger/models"
)

func (s *Server) listRules(c *fiber.Ctx) error {
	rules, err := s.Rules.List(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": rules, "next_cursor": nil})
}

type ruleReq struct {
	Code            string                  `json:"code"`
	Name            *string                 `json:"name"`
	Category        *string                 `json:"category"`
	How             *string                 `json:"how"`
	Points          *models.Points          `json:"points"`
	Unit            *string                 `json:"unit"`
	MonthlyCap      optional[models.Points] `json:"monthly_cap"`
	NeedsEvidence   *bool                   `json:"needs_evidence"`
	NeedsAssignment *bool                   `json:"needs_assignment"`
	Active          *bool                   `json:"active"`
}

func (r ruleReq) input() app.RuleInput {
	in := app.RuleInput{Code: r.Code, Name: r.Name, Category: r.Category, How: r.How, Points: r.Points, Unit: r.Unit,
		NeedsEvidence: r.NeedsEvidence, NeedsAssignment: r.NeedsAssignment, Active: r.Active, NoCap: r.MonthlyCap.Null}
	if r.MonthlyCap.Set && !r.MonthlyCap.Null {
		in.MonthlyCap = &r.MonthlyCap.Value
	}
	return in
}

func (s *Server) createRule(c *fiber.Ctx) error {
	var req ruleReq
	if err := decode(c, &req); err != nil {
		return err
	}
	r, err := s.Rules.Create(c.UserContext(), actor(c), req.input())
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(r)
}

func (s *Server) updateRule(c *fiber.Ctx) error {
	var req ruleReq
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Code != "" && req.Code != c.Params("code") {
		return models.InvalidField("code", "cannot change; make a new rule")
	}
	r, err := s.Rules.Update(c.UserContext(), actor(c), c.Params("code"), req.input())
	if err != nil {
		return err
	}
	return c.JSON(r)
}

type reasonReq struct {
	Reason string `json:"reason" validate:"notblank,max=500"`
}

func (s *Server) listEntries(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	p, err := page(c)
	if err != nil {
		return err
	}
	list, err := s.Ledger.Entries(c.UserContext(), actor(c), id, c.Query("period"), p)
	if err != nil {
		return err
	}
	return c.JSON(list)
}

type periodReq struct {
	OrgID  int64  `json:"org_id" validate:"required,gt=0"`
	Reason string `json:"reason" validate:"max=500"`
}

func (s *Server) closePeriod(c *fiber.Ctx) error {
	var req periodReq
	if err := decode(c, &req); err != nil {
		return err
	}
	cp, err := s.Ledger.ClosePeriod(c.UserContext(), actor(c), c.Params("period"), req.OrgID)
	if err != nil {
		return err
	}
	return c.JSON(cp)
}

func (s *Server) reopenPeriod(c *fiber.Ctx) error {
	var req periodReq
	if err := decode(c, &req); err != nil {
		return err
	}
	cp, err := s.Ledger.ReopenPeriod(c.UserContext(), actor(c), c.Params("period"), req.OrgID, req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(cp)
}

func (s *Server) listAudit(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	org, err := queryID(c, "org_id")
	if err != nil {
		return err
	}
	if org == nil {
		return models.InvalidField("org_id", "is required")
	}
	var since *time.Time
	if v := c.Query("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return models.InvalidField("since", "must be a time such as 2026-05-01T00:00:00+08:00")
		}
		since = &t
	}
	list, err := s.Audit.List(c.UserContext(), actor(c), *org, since, p)
	if err != nil {
		return err
	}
	return c.JSON(list)
}
