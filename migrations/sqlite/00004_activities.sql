-- Activities with a check-in code for a QR, and members' check-ins (one each).
-- Index names match the MySQL migration.
-- +goose Up
CREATE TABLE activities (
  id           INTEGER      NOT NULL PRIMARY KEY AUTOINCREMENT,
  org_id       INTEGER      NOT NULL REFERENCES orgs (id),
  title        VARCHAR(200) NOT NULL,
  rule_code    VARCHAR(64)  NOT NULL,
  starts_at    DATETIME     NOT NULL,
  ends_at      DATETIME     NOT NULL,
  checkin_code VARCHAR(32)  NOT NULL,
  lat          REAL         NULL,
  lng          REAL         NULL,
  radius_m     INTEGER      NULL,
  created_by   INTEGER      NULL,
  created_at   DATETIME     NOT NULL
);
CREATE UNIQUE INDEX uq_activities_code ON activities (checkin_code);
CREATE INDEX idx_activities_org ON activities (org_id, id);

CREATE TABLE checkins (
  id          INTEGER  NOT NULL PRIMARY KEY AUTOINCREMENT,
  activity_id INTEGER  NOT NULL REFERENCES activities (id),
  member_id   INTEGER  NOT NULL REFERENCES members (id),
  entry_id    INTEGER  NULL,
  lat         REAL     NULL,
  lng         REAL     NULL,
  created_at  DATETIME NOT NULL
);
CREATE UNIQUE INDEX uq_checkins_once ON checkins (activity_id, member_id);
CREATE INDEX idx_checkins_member ON checkins (member_id);

-- +goose Down
DROP TABLE checkins;
DROP TABLE activities;
