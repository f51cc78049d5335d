package app

import (
	"strings"
	"testing"
)

// TestSubtreeRangeIsThePrefix checks the range that stands in for LIKE 'path%' against
// the prefix test, on paths where ids share leading digits.
func TestSubtreeRangeIsThePrefix(t *testing.T) {
	paths := []string{"/1/", "/1/2/", "/1/2/3/", "/1/2/30/", "/1/20/", "/1/20/2/", "/1/3/", "/1/19/", "/10/", "/1/2/9/99/"}
	for _, outer := range paths {
		_, args := subtree("path", outer)
		lo, hi := args[0].(string), args[1].(string)
		for _, inner := range paths {
			in := inner >= lo && inner < hi
			if in != strings.HasPrefix(inner, outer) {
				t.Errorf("subtree %s: %s in range [%s, %s) is %v", outer, inner, lo, hi, in)
			}
		}
	}
}
