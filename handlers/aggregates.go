package handlers

import (
	"context"
	"errors"
	"io"

	"github.com/gofiber/fiber/v2"

	"partyledger/app"
	"partyledger/models"
)

// boardArgs reads what both leaderboards take: the org (the caller's branch when absent),
// the limit and the raw cursor.
func boardArgs(c *fiber.Ctx) (org int64, limit int, err error) {
	p, err := app.ParsePage(c.Query("limit"), "")
	if err != nil {
		return 0, 0, err
	}
	id, err := queryID(c, "org_id")
	if err != nil {
		return 0, 0, err
	}
	if id == nil {
		return actor(c).BranchID, p.Limit, nil
	}
	return *id, p.Limit, nil
}

func (s *Server) memberBoard(c *fiber.Ctx) error {
	org, limit, err := boardArgs(c)
	if err != nil {
		return err
	}
	b, err := s.Aggregates.MemberBoard(c.UserContext(), actor(c), org, c.Query("period"), c.Query("cursor"), limit)
	if err != nil {
		return err
	}
	return c.JSON(b)
}

func (s *Server) branchBoard(c *fiber.Ctx) error {
	org, limit, err := boardArgs(c)
	if err != nil {
		return err
	}
	b, err := s.Aggregates.BranchBoard(c.UserContext(), actor(c), org, c.Query("period"), c.Query("by"), c.Query("cursor"), limit)
	if err != nil {
		return err
	}
	return c.JSON(b)
}

// memberSummary answers a month (?period=, the current one when absent) or a year (?year=).
func (s *Server) memberSummary(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if y := c.Query("year"); y != "" {
		if c.Query("period") != "" {
			return models.InvalidField("year", "ask for a period or a year, not both")
		}
		sum, err := s.Aggregates.MemberYear(c.UserContext(), actor(c), id, y)
		if err != nil {
			return err
		}
		return c.JSON(sum)
	}
	sum, err := s.Aggregates.MemberMonth(c.UserContext(), actor(c), id, c.Query("period"))
	if err != nil {
		return err
	}
	return c.JSON(sum)
}

func (s *Server) branchSummary(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	sum, err := s.Aggregates.BranchMonth(c.UserContext(), actor(c), id, c.Query("period"))
	if err != nil {
		return err
	}
	return c.JSON(sum)
}

func (s *Server) listAppeals(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	list, err := s.Appeals.List(c.UserContext(), actor(c), app.AppealFilter{Status: c.Query("status")}, p)
	if err != nil {
		return err
	}
	return c.JSON(list)
}

// report streams the monthly report; its checks and row count come first, so that an
// error is still an error response and not half a file.
func (s *Server) report(c *fiber.Ctx) error {
	org, err := queryID(c, "org_id")
	if err != nil {
		return err
	}
	if org == nil {
		return models.InvalidField("org_id", "is required")
	}
	// Reports are the heaviest reads there are: a few at a time, the rest asked to retry.
	select {
	case s.Reports <- struct{}{}:
	default:
		return &models.Error{Code: models.ERateLimited, Message: "other reports are being written, try again shortly", RetryAfter: 5}
	}
	streaming := false
	defer func() {
		if !streaming {
			<-s.Reports
		}
	}()
	rep, err := s.Aggregates.PrepareReport(c.UserContext(), actor(c), *org, c.Query("period"), c.Query("format"), c.Query("sheet"))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, app.ReportFormats[rep.Format])
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+rep.FileName()+`"`)
	if c.Method() == fiber.MethodHead { // the headers are the answer: no body to write
		return nil
	}
	log, slots := s.Log, s.Reports
	streaming = true
	streamBody(c, func(w io.Writer) error {
		defer func() { <-slots }()
		ctx, cancel := context.WithTimeout(context.Background(), bulkTimeout)
		defer cancel()
		err := rep.WriteTo(ctx, w)
		switch {
		case errors.Is(err, io.ErrClosedPipe): // the client went away; nothing is wrong here
			log.Info("report not sent whole: the client went away", "org_id", *org)
		case err != nil:
			log.Error("report", "err", err.Error(), "org_id", *org)
		}
		return err
	})
	return nil
}

// streamBody sends what write writes as the response body, chunk by chunk while it runs,
// so a big body is never held whole. The status went first, so a write that fails half-way
// cannot become an error response: its error cuts the connection before the chunked
// body's last chunk, and the client sees a download that did not finish (curl:
// "transfer closed with outstanding read data remaining"; Go: unexpected EOF), never a
// shorter file that looks whole. A client that goes away fails write's next write.
func streamBody(c *fiber.Ctx, write func(io.Writer) error) {
	r, w := io.Pipe()
	go func() { w.CloseWithError(write(w)) }() // nil closes it: the body's end
	c.Response().SetBodyStream(r, -1)
}

// maxReports is how many reports the server writes at once; on two cores more would only
// slow every one of them and the requests around them.
const maxReports = 2
