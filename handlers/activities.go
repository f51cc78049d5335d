package handlers

import "github.com/gofiber/fiber/v2"

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
