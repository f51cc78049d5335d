package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The image runs as distroless's nonroot user (65532), and docker-compose.yml mounts a
// named volume at the server's data directory. Docker makes a volume's mount point
// root's unless the image has that directory, whose owner the new volume copies; then
// the server cannot store an upload. This holds the two files to each other: the
// directory the compose file mounts is the image's data directory, and the image
// creates it for its user. (No image is built here: the build pulls from registries.)
func TestTheImageOwnsTheDirectoryComposeMounts(t *testing.T) {
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile("../../" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	dockerfile, compose := read("Dockerfile"), read("docker-compose.yml")

	stages := strings.Split(dockerfile, "\nFROM ")
	final := stages[len(stages)-1]
	if from := strings.SplitN(final, "\n", 2)[0]; from != "gcr.io/distroless/static-debian12:nonroot" {
		t.Fatalf("the final stage is not distroless's nonroot image (user 65532): FROM %s", from)
	}
	env := regexp.MustCompile(`(?m)^ENV .*\bLEDGER_DATA_DIR=(\S+)`).FindStringSubmatch(final)
	if env == nil {
		t.Fatal("the image sets no LEDGER_DATA_DIR")
	}
	dataDir := env[1]
	owned := regexp.MustCompile(`(?m)^COPY --from=\S+ --chown=65532:65532 \S+ (\S+)$`).FindAllStringSubmatch(final, -1)
	if len(owned) == 0 || owned[0][1] != dataDir {
		t.Fatalf("the image does not create %s for its user: %q", dataDir, owned)
	}

	server := compose[strings.Index(compose, "\n  server:\n"):]
	if end := strings.Index(server, "\nvolumes:"); end > 0 {
		server = server[:end]
	}
	mounts := regexp.MustCompile(`(?m)^      - ([a-z][a-z0-9_-]*):(/\S+)$`).FindAllStringSubmatch(server, -1)
	if len(mounts) == 0 {
		t.Fatal("docker-compose.yml mounts no named volume for the server")
	}
	for _, m := range mounts {
		if m[2] != dataDir {
			t.Errorf("volume %s is mounted at %s, which the image does not create for its user (its data directory is %s)", m[1], m[2], dataDir)
		}
	}
	if strings.Contains(server, "LEDGER_DATA_DIR") {
		t.Error("docker-compose.yml moves LEDGER_DATA_DIR away from the directory the image prepares")
	}
}
