package handlers

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"partyledger/app"
)

// The adapters below turn a use case into a handler when there is nothing to do between
// the request and the use case but read the path id and/or the JSON body: the caller
// comes from auth, errors go to the error handler, the result is answered as JSON.

// byID runs fn on the path's id.
func byID[Out any](status int, fn func(context.Context, *app.Actor, int64) (Out, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		out, err := fn(c.UserContext(), actor(c), id)
		if err != nil {
			return err
		}
		return c.Status(status).JSON(out)
	}
}

// withBody runs fn on the decoded JSON body.
func withBody[In, Out any](status int, fn func(context.Context, *app.Actor, In) (Out, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var in In
		if err := decode(c, &in); err != nil {
			return err
		}
		out, err := fn(c.UserContext(), actor(c), in)
		if err != nil {
			return err
		}
		return c.Status(status).JSON(out)
	}
}

// byIDWithBody runs fn on the path's id and the decoded JSON body.
func byIDWithBody[In, Out any](status int, fn func(context.Context, *app.Actor, int64, In) (Out, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		var in In
		if err := decode(c, &in); err != nil {
			return err
		}
		out, err := fn(c.UserContext(), actor(c), id, in)
		if err != nil {
			return err
		}
		return c.Status(status).JSON(out)
	}
}

// byIDWithReason runs fn on the path's id and the body's reason (reject, reverse).
func byIDWithReason[Out any](status int, fn func(context.Context, *app.Actor, int64, string) (Out, error)) fiber.Handler {
	return byIDWithBody(status, func(ctx context.Context, a *app.Actor, id int64, r reasonReq) (Out, error) {
		return fn(ctx, a, id, r.Reason)
	})
}
