package handlers

import (
	"github.com/gofiber/fiber/v2"

	"partyledger/app"
)

func (s *Server) createActivity(c *fiber.Ctx) error {
	var req app.ActivityInput
	if err := decode(c, &req); err != nil {
		return err
	}
	act, err := s.Activities.Create(c.UserContext(), actor(c), req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(act)
}

func (s *Server) listActivities(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	list, err := s.Activities.List(c.UserContext(), actor(c), p)
	if err != nil {
		return err
	}
	return c.JSON(list)
}

func (s *Server) rotateActivityCode(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	act, err := s.Activities.RotateCode(c.UserContext(), actor(c), id)
	if err != nil {
		return err
	}
	return c.JSON(act)
}

func (s *Server) checkin(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var req app.CheckinInput
	if err := decode(c, &req); err != nil {
		return err
	}
	res, err := s.Activities.Checkin(c.UserContext(), actor(c), id, req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(res)
}

func (s *Server) attendance(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	p, err := page(c)
	if err != nil {
		return err
	}
	list, err := s.Activities.Attendance(c.UserContext(), actor(c), id, p)
	if err != nil {
		return err
	}
	return c.JSON(list)
}
