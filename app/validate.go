package app

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/go-playground/validator/v10"

	"partyledger/models"
)

var (
	validateOnce sync.Once
	validate     *validator.Validate
	memberNoRe   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
)

// validatorInstance returns the one validator (it caches struct metadata and is safe for
// concurrent use), naming fields by their JSON names.
func validatorInstance() *validator.Validate {
	validateOnce.Do(func() {
		validate = validator.New(validator.WithRequiredStructEnabled())
		validate.RegisterTagNameFunc(func(f reflect.StructField) string {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				return ""
			}
			return name
		})
		_ = validate.RegisterValidation("member_no", func(fl validator.FieldLevel) bool {
			return memberNoRe.MatchString(fl.Field().String())
		})
		_ = validate.RegisterValidation("notblank", func(fl validator.FieldLevel) bool {
			return strings.TrimSpace(fl.Field().String()) != ""
		})
	})
	return validate
}

// Validate checks v's `validate` tags and returns EInvalid naming each bad field. Values
// that are not structs (a list body) have no tags of their own and pass; their items are
// validated by the use case.
func Validate(v any) error {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil
	}
	err := validatorInstance().Struct(rv.Interface())
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return fmt.Errorf("validate: %w", err)
	}
	fields := make(map[string]string, len(verrs))
	for _, fe := range verrs {
		name := fe.Namespace()
		if _, rest, ok := strings.Cut(name, "."); ok {
			name = rest // drop the struct's own name
		}
		fields[name] = fieldMessage(fe)
	}
	return models.Invalid(fields)
}

func fieldMessage(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required", "notblank":
		return "is required"
	case "max":
		if fe.Kind() == reflect.String {
			return "must have at most " + fe.Param() + " characters"
		}
		if fe.Kind() == reflect.Slice {
			return "must have at most " + fe.Param() + " items"
		}
		return "must be at most " + fe.Param()
	case "min":
		if fe.Kind() == reflect.String {
			return "must have at least " + fe.Param() + " characters"
		}
		if fe.Kind() == reflect.Slice {
			return "must have at least " + fe.Param() + " items"
		}
		return "must be at least " + fe.Param()
	case "gt":
		return "must be greater than " + fe.Param()
	case "gte":
		return "must be at least " + fe.Param()
	case "oneof":
		return "must be one of: " + strings.ReplaceAll(fe.Param(), " ", ", ")
	case "member_no":
		return "must be 1 to 32 letters, digits, '_' or '-'"
	}
	return "is invalid (" + fe.Tag() + ")"
}

// A rule code is dotted lower-case words, at most maxRuleCode characters (the column's
// width: MySQL refuses a longer one).
var ruleCodeRe = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$`)

const maxRuleCode = 64
