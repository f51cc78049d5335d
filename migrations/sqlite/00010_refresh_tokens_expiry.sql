-- Expired refresh tokens are deleted by the server's hourly sweep (app.Tokens.Purge):
-- every log-in and every refresh adds a row, so without it the table grows for ever.
-- The sweep finds them by expiry.
-- +goose Up
CREATE INDEX idx_refresh_tokens_expires ON refresh_tokens (expires_at);

-- +goose Down
DROP INDEX idx_refresh_tokens_expires;
