package handlers

import (
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"partyledger/app"
	"partyledger/models"
)

// statusOf is the one place where error codes become HTTP statuses.
var statusOf = map[string]int{
	models.EMalformed:    fiber.StatusBadRequest,
	models.EUnauthorized: fiber.StatusUnauthorized,
	models.EForbidden:    fiber.StatusForbidden,
	models.ENotFound:     fiber.StatusNotFound,
	models.ETimeout:      fiber.StatusRequestTimeout,
	models.EConflict:     fiber.StatusConflict,
	models.ETooLarge:     fiber.StatusRequestEntityTooLarge,
	models.EMediaType:    fiber.StatusUnsupportedMediaType,
	models.EInvalid:      fiber.StatusUnprocessableEntity,
	models.ERateLimited:  fiber.StatusTooManyRequests,
	models.EInternal:     fiber.StatusInternalServerError,
	models.EBadGateway:   fiber.StatusBadGateway,
	models.EUnavailable:  fiber.StatusServiceUnavailable,
}

// fiberErrors turns the framework's own errors (no route, body too large, header too
// large, timeouts) into domain errors with messages of our own.
func fromFiber(fe *fiber.Error) *models.Error {
	switch fe.Code {
	case fiber.StatusNotFound:
		return models.Errorf(models.ENotFound, "no such endpoint")
	case fiber.StatusMethodNotAllowed:
		return models.Errorf(models.ENotFound, "no such endpoint")
	case fiber.StatusRequestEntityTooLarge:
		return models.Errorf(models.ETooLarge, "the request body is too large")
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return &models.Error{Code: models.EMalformed, Message: "the request headers are too large"}
	case fiber.StatusRequestTimeout:
		// 408, not 400: it is also the answer on a connection that never sent a request,
		// and clients (browsers, Go's) read a 408 there as "closed", not as the answer
		// to a request they are just sending.
		return models.Errorf(models.ETimeout, "the request took too long to arrive")
	case fiber.StatusUnsupportedMediaType:
		return models.Errorf(models.EMediaType, "unsupported content type")
	}
	if fe.Code >= 400 && fe.Code < 500 {
		return models.Errorf(models.EMalformed, "the request could not be read")
	}
	return nil
}

type errorBody struct {
	Error *models.Error `json:"error"`
}

// errorHandler writes every error in the one envelope. Internal errors are logged with
// the request id and answered with a fixed message.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	var me *models.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &me):
	case errors.As(err, &fe):
		me = fromFiber(fe)
	case app.IsUnavailable(err):
		// A database that stopped answering (the request's deadline passed, the
		// connection broke) is "try again", wherever the error came from.
		me = app.Unavailable(err)
	}
	ctx := c.UserContext()
	status, ok := 0, false
	if me != nil {
		status, ok = statusOf[me.Code]
	}
	if me == nil || !ok || status == fiber.StatusInternalServerError {
		s.Log.ErrorContext(ctx, "request failed", "err", err.Error(), "method", c.Method(), "route", routeLabel(c))
		me = &models.Error{Code: models.EInternal, Message: "something went wrong on our side; it has been logged"}
		status = fiber.StatusInternalServerError
	} else if status >= 500 {
		s.Log.WarnContext(ctx, "request failed", "code", me.Code, "err", err.Error(), "route", routeLabel(c))
	}
	if me.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(me.RetryAfter))
	}
	// The wire copy drops the internal cause.
	out := &models.Error{Code: me.Code, Message: me.Message, Fields: me.Fields, Rows: me.Rows}
	return c.Status(status).JSON(errorBody{Error: out})
}
