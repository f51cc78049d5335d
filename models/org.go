package models

import (
	"strconv"
	"strings"
	"time"
)

// OrgKind is the level of an organisation in the party tree.
type OrgKind string

// The org kinds, from the top.
const (
	KindCommittee     OrgKind = "committee"      // 党委
	KindGeneralBranch OrgKind = "general_branch" // 党总支
	KindBranch        OrgKind = "branch"         // 党支部
	KindGroup         OrgKind = "group"          // 党小组
)

// Valid reports whether k is one of the four kinds.
func (k OrgKind) Valid() bool {
	switch k {
	case KindCommittee, KindGeneralBranch, KindBranch, KindGroup:
		return true
	}
	return false
}

// CanBeChildOf reports whether an org of kind k may sit directly under an org of kind parent.
// Committees nest (a provincial committee holds university committees); a general branch
// sits under a committee; a branch under a committee or a general branch; a group under a branch.
func (k OrgKind) CanBeChildOf(parent OrgKind) bool {
	switch k {
	case KindCommittee:
		return parent == KindCommittee
	case KindGeneralBranch:
		return parent == KindCommittee
	case KindBranch:
		return parent == KindCommittee || parent == KindGeneralBranch
	case KindGroup:
		return parent == KindBranch
	}
	return false
}

// Org is a node of the organisation tree. Path is the materialised path of ids from the
// root, "/1/4/27/", so that "is X inside Y's subtree" is a prefix test and a subtree is
// one indexed range scan.
type Org struct {
	ID        int64     `gorm:"primaryKey" json:"id"`
	ParentID  *int64    `json:"parent_id"`
	Kind      OrgKind   `json:"kind"`
	Name      string    `json:"name"`
	Path      string    `json:"-"`
	Depth     int       `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ChildPath returns the path a child with the given id of an org at parentPath has.
func ChildPath(parentPath string, id int64) string {
	if parentPath == "" {
		parentPath = "/"
	}
	return parentPath + strconv.FormatInt(id, 10) + "/"
}

// PathContains reports whether the org at path inner lies in the subtree rooted at outer
// (an org's subtree includes the org itself).
func PathContains(outer, inner string) bool {
	return outer != "" && strings.HasPrefix(inner, outer)
}
