package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"reflect"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"partyledger/app"
	"partyledger/models"
)

// maxJSONBody bounds JSON request bodies; only uploads and imports take more.
const maxJSONBody = 1 << 20

// decode reads a JSON object body into dst: the media type must be JSON (415), the body
// at most maxJSONBody (413), well-formed (400), without unknown fields and with the
// right types (422). Then dst's validate tags are checked (422).
func decode(c *fiber.Ctx, dst any) error {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return models.Errorf(models.EMediaType, "send the body as application/json")
	}
	body := c.Body()
	if len(body) > maxJSONBody {
		return models.Errorf(models.ETooLarge, "the body is larger than %d bytes", maxJSONBody)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return models.Errorf(models.EMalformed, "the body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return models.Errorf(models.EMalformed, "the body holds more than one JSON value")
	}
	return app.Validate(dst)
}

// jsonError explains a decoding error without echoing the body.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return models.Errorf(models.EMalformed, "the body is not valid JSON")
	case errors.As(err, &typ):
		if typ.Type == reflect.TypeFor[models.Points]() {
			return models.InvalidField(typ.Field, models.ErrPointsFormat.Error())
		}
		if typ.Field == "" {
			return models.Errorf(models.EMalformed, "the body must be a JSON %s", kindName(typ.Type))
		}
		return models.InvalidField(typ.Field, "must be "+article(kindName(typ.Type)))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return models.InvalidField(name, "is not a field of this request")
	}
	var me *models.Error
	if errors.As(err, &me) {
		return me
	}
	return models.Errorf(models.EMalformed, "the body is not valid JSON")
}

func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "whole number"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return "value of another type"
}

func article(s string) string {
	switch s[0] {
	case 'a', 'o', 'e', 'i', 'u':
		return "an " + s
	}
	return "a " + s
}

// optional tells an absent JSON field from an explicit null, for PATCH bodies.
type optional[T any] struct {
	Set   bool
	Null  bool
	Value T
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// pathID reads a positive integer path parameter; anything else is an unknown thing (404).
func pathID(c *fiber.Ctx, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Params(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, models.Errorf(models.ENotFound, "no such %s", strings.TrimSuffix(name, "_id"))
	}
	return id, nil
}

// queryID reads an optional positive integer query parameter. Returns EInvalid.
func queryID(c *fiber.Ctx, name string) (*int64, error) {
	v := c.Query(name)
	if v == "" {
		return nil, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return nil, models.InvalidField(name, "must be a positive whole number")
	}
	return &id, nil
}

// page reads limit and cursor. Returns EInvalid.
func page(c *fiber.Ctx) (app.Page, error) {
	return app.ParsePage(c.Query("limit"), c.Query("cursor"))
}
