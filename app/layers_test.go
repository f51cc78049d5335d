package app_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayers holds the house rules: app and models never import the HTTP framework, and
// nothing imports cmd.
func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "partyledger/app/...", "partyledger/models/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "gofiber") || strings.Contains(pkg, "fasthttp") {
			t.Errorf("app or models depends on %s", pkg)
		}
	}
	out, err = exec.Command("go", "list", "-f", `{{.ImportPath}}: {{join .Imports " "}}`, "partyledger/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		pkg, imports, _ := strings.Cut(line, ": ")
		if strings.Contains(" "+imports+" ", " partyledger/cmd/") {
			t.Errorf("%s imports a command", pkg)
		}
	}
	if !strings.Contains(string(out), "partyledger/handlers: ") {
		t.Fatal("go list saw no packages")
	}
}
