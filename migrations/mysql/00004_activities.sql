-- Activities with a check-in code for a QR, and members' check-ins (one each).
-- +goose Up
CREATE TABLE activities (
  id           BIGINT       NOT NULL AUTO_INCREMENT,
  org_id       BIGINT       NOT NULL,
  title        VARCHAR(200) NOT NULL,
  rule_code    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  starts_at    DATETIME(6)  NOT NULL,
  ends_at      DATETIME(6)  NOT NULL,
  checkin_code VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  lat          DOUBLE       NULL,
  lng          DOUBLE       NULL,
  radius_m     INT          NULL,
  created_by   BIGINT       NULL,
  created_at   DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_activities_code (checkin_code),
  KEY idx_activities_org (org_id, id),
  CONSTRAINT fk_activities_org FOREIGN KEY (org_id) REFERENCES orgs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE checkins (
  id          BIGINT      NOT NULL AUTO_INCREMENT,
  activity_id BIGINT      NOT NULL,
  member_id   BIGINT      NOT NULL,
  entry_id    BIGINT      NULL,
  lat         DOUBLE      NULL,
  lng         DOUBLE      NULL,
  created_at  DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_checkins_once (activity_id, member_id),
  KEY idx_checkins_member (member_id),
  CONSTRAINT fk_checkins_activity FOREIGN KEY (activity_id) REFERENCES activities (id),
  CONSTRAINT fk_checkins_member FOREIGN KEY (member_id) REFERENCES members (id)
) ENGINE=InnoDB;

-- +goose Down
DROP TABLE checkins;
DROP TABLE activities;
