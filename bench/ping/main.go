// Command ping is a bare Fiber JSON ping: the ceiling of the HTTP layer on this machine,
// measured beside the service's own figures by bench/run.sh.
package main

import (
	"os"

	"github.com/gofiber/fiber/v2"
)

func main() {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/ping", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	if err := app.Listen(os.Args[1]); err != nil {
		os.Exit(1)
	}
}
