package app_test

import (
	"context"
	"strings"
	"testing"

	"partyledger/app"
)

// TestABadMySQLDSNNeverShowsItsPassword: the driver's parse errors may quote a part of
// the DSN. A password with a slash, in a DSN without its database name, is read as the
// database name, and the driver's error quotes it from there to the end (and its first
// colon is the port's); a parameter's bad value is quoted too. The service's error shows
// none of the credentials, and keeps the driver's message where it quotes none of them.
func TestABadMySQLDSNNeverShowsItsPassword(t *testing.T) {
	for _, c := range []struct{ dsn, want string }{
		{"ledger:pa/ss%w0rd@tcp(127.0.0.1:3306)", "bad mysql DSN: invalid dbname (the rest is not shown"},
		{"ledger:pa/ss%w0rd@tcp(127.0.0.1:3306", "bad mysql DSN: invalid dbname (the rest is not shown"},
		{"ledger:s3cret@tcp(127.0.0.1:3306)/db?parseTime=s3cret", "bad mysql DSN: invalid bool value (the rest is not shown"},
		{"ledger:s3cret@tcp(127.0.0.1:3306)/db?parseTime=maybe", "bad mysql DSN: invalid bool value: maybe"},
		{"ledger:s3cret@tcp(127.0.0.1:3306)/db?x=%", `bad mysql DSN: invalid URL escape "%"`},
	} {
		_, err := app.OpenDB(context.Background(), "mysql", c.dsn)
		if err == nil {
			t.Fatalf("%s: opened", c.dsn)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.dsn, err, c.want)
		}
		for _, secret := range []string{"w0rd", "s3cret"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error shows %q: %v", c.dsn, secret, err)
			}
		}
	}
}
