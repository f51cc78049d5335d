package app_test

import (
	"errors"
	"testing"

	"partyledger/app"
	"partyledger/models"
)

// TestValidationNamesEachFieldAndSaysWhatItNeeds: a body that breaks its validate tags
// gets one message per field, under the field's JSON name (a nested field by its path,
// without the body's own type name), saying what the field needs in words a person can
// act on.
func TestValidationNamesEachFieldAndSaysWhatItNeeds(t *testing.T) {
	type inner struct {
		Code string `json:"code" validate:"required"`
	}
	type body struct {
		Required string  `json:"required" validate:"required"`
		Blank    string  `json:"blank" validate:"notblank"`
		LongText string  `json:"long_text" validate:"max=3"`
		ManyIDs  []int64 `json:"many_ids" validate:"max=2"`
		Big      int     `json:"big" validate:"max=10"`
		Short    string  `json:"short" validate:"min=2"`
		FewIDs   []int64 `json:"few_ids" validate:"min=2"`
		Small    int     `json:"small" validate:"min=5"`
		Positive int     `json:"positive" validate:"gt=0"`
		AtLeast  int     `json:"at_least" validate:"gte=1"`
		Kind     string  `json:"kind" validate:"oneof=csv xlsx"`
		MemberNo string  `json:"member_no" validate:"member_no"`
		IDs      []int64 `json:"ids" validate:"dive,gt=0"`
		Mail     string  `json:"mail" validate:"email"`
		Inner    inner   `json:"inner"`
		Hidden   string  `json:"-" validate:"required"`
	}
	in := body{Blank: " \t", LongText: "四个一的", ManyIDs: []int64{1, 2, 3}, Big: 11, Short: "党", Small: 4, Positive: 0, AtLeast: 0,
		Kind: "pdf", MemberNo: "A 1", IDs: []int64{1, 0}, Mail: "nobody", Hidden: ""}
	err := app.Validate(&in)
	var me *models.Error
	if !errors.As(err, &me) || me.Code != models.EInvalid {
		t.Fatalf("Validate = %v, want an invalid error", err)
	}
	want := map[string]string{
		"required":   "is required",
		"blank":      "is required",
		"long_text":  "must have at most 3 characters",
		"many_ids":   "must have at most 2 items",
		"big":        "must be at most 10",
		"short":      "must have at least 2 characters",
		"few_ids":    "must have at least 2 items",
		"small":      "must be at least 5",
		"positive":   "must be greater than 0",
		"at_least":   "must be at least 1",
		"kind":       "must be one of: csv, xlsx",
		"member_no":  "must be 1 to 32 letters, digits, '_' or '-'",
		"ids[1]":     "must be greater than 0",
		"mail":       "is invalid (email)",
		"inner.code": "is required",
		// A field the JSON cannot name is named by the validator's own way, not as "-".
		"Hidden": "is required",
	}
	for f, msg := range want {
		if me.Fields[f] != msg {
			t.Errorf("field %q: %q, want %q", f, me.Fields[f], msg)
		}
	}
	if len(me.Fields) != len(want) {
		t.Errorf("fields %v, want exactly %d", me.Fields, len(want))
	}

	// A good body passes, through any number of pointers; a list body has no tags.
	good := body{Required: "x", Blank: "x", Short: "党员", FewIDs: []int64{1, 2}, Small: 5, Positive: 1, AtLeast: 1, Kind: "csv",
		MemberNo: "A_1-2", Mail: "a@example.com", Inner: inner{Code: "c"}, Hidden: "h"}
	p := &good
	if err := app.Validate(&p); err != nil {
		t.Fatalf("a good body: %v", err)
	}
	if err := app.Validate([]body{{}}); err != nil {
		t.Fatalf("a list body: %v", err)
	}
	var nilBody *body
	if err := app.Validate(nilBody); err != nil {
		t.Fatalf("a nil body: %v", err)
	}
}
