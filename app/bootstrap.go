package app

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"gorm.io/gorm"

	"partyledger/models"
)

// Bootstrap prepares an empty database (one without orgs). In demo mode it seeds the
// demo committee; otherwise, when an admin username and password are configured, it
// creates the root committee and that admin. A database that has orgs is left alone.
// It returns the demo log-ins it created, if any.
func Bootstrap(ctx context.Context, db *DB, cfg Config, log *slog.Logger) ([]DemoLogin, error) {
	n, err := countOrgs(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if n > 0 {
		return nil, nil
	}
	var logins []DemoLogin
	err = db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var root models.Org
		var err error
		if cfg.Demo {
			if root, logins, err = seedDemo(tx, cfg.DemoMonths, cfg.Location, time.Now(), FSStore{Dir: cfg.DataDir}); err != nil {
				return err
			}
			log.Info("seeded demo data", "members", demoMembers, "branches", demoBranches)
		} else if cfg.AdminUsername != "" {
			if root, err = createOrg(tx, nil, models.KindCommittee, "党委"); err != nil {
				return err
			}
		} else {
			log.Warn("the database is empty: set LEDGER_ADMIN_USERNAME and LEDGER_ADMIN_PASSWORD to create the first admin, or LEDGER_DEMO=1 for demo data")
			return nil
		}
		if cfg.AdminUsername != "" {
			hash, err := HashPassword(cfg.AdminPassword)
			if err != nil {
				return fmt.Errorf("bootstrap: LEDGER_ADMIN_PASSWORD: %w", err)
			}
			now := time.Now().UTC().Truncate(time.Microsecond)
			admin := models.Member{MemberNo: "admin", Name: "管理员", BranchID: root.ID, Status: models.StatusActive,
				Username: &cfg.AdminUsername, PasswordHash: &hash, CreatedAt: now, UpdatedAt: now}
			if err := tx.Create(&admin).Error; err != nil {
				return fmt.Errorf("bootstrap: create admin: %w", err)
			}
			if err := tx.Create(&models.MemberRole{MemberID: admin.ID, Role: models.RoleAdmin, OrgID: root.ID, CreatedAt: now}).Error; err != nil {
				return fmt.Errorf("bootstrap: grant admin: %w", err)
			}
			if err := writeAudit(tx, nil, &root.ID, "bootstrap.admin_created", "member", admin.ID, nil, map[string]any{"username": cfg.AdminUsername}); err != nil {
				return err
			}
			log.Info("created the root committee and the first admin", "username", cfg.AdminUsername, "org_id", root.ID)
		}
		return nil
	})
	if isDuplicate(err) {
		// Another process (a replica starting at the same moment) bootstrapped it first:
		// its admin or demo members hold the same unique names. This one's transaction
		// rolled back whole; the database is prepared.
		if n, cerr := countOrgs(ctx, db); cerr == nil && n > 0 {
			log.Info("the database was prepared by another process meanwhile")
			return nil, nil
		}
	}
	return logins, err
}

func countOrgs(ctx context.Context, db *DB) (int64, error) {
	var n int64
	err := db.W.WithContext(ctx).Model(&models.Org{}).Count(&n).Error
	return n, err
}

// createOrg inserts an org under parent (nil for a root) and sets its path.
func createOrg(tx *gorm.DB, parent *models.Org, kind models.OrgKind, name string) (models.Org, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	o := models.Org{Kind: kind, Name: name, CreatedAt: now, UpdatedAt: now}
	parentPath := "/"
	if parent != nil {
		o.ParentID, o.Depth, parentPath = &parent.ID, parent.Depth+1, parent.Path
	}
	if err := tx.Create(&o).Error; err != nil {
		return o, fmt.Errorf("create org %s: %w", name, err)
	}
	o.Path = models.ChildPath(parentPath, o.ID)
	if err := tx.Model(&o).Update("path", o.Path).Error; err != nil {
		return o, fmt.Errorf("create org %s: %w", name, err)
	}
	return o, nil
}

// DemoLogin is a member of the demo data and the WeChat code that logs them in.
type DemoLogin struct {
	Who  string
	Code string
}

const (
	demoMembers  = 3000
	demoBranches = 130
)

var (
	demoGeneralBranches = []string{"机关党总支", "文学院党总支", "理学院党总支", "工学院党总支", "经济管理学院党总支", "医学院党总支", "信息科学与技术学院党总支", "离退休党总支"}
	demoBranchKinds     = []string{"教工第%s党支部", "本科生第%s党支部", "研究生第%s党支部"}
	demoOrdinals        = []string{"一", "二", "三", "四", "五", "六", "七", "八", "九", "十"}
	demoSurnames        = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
	demoGiven           = []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建文辉力兰宁海峰云鹏飞晨曦思远佳怡欣然浩宇子涵梓萱一诺雨泽博文嘉怡俊杰晓东志刚丹凤春梅国庆建华立新卫东")
)

type demoBranch struct {
	org    models.Org
	groups [2]models.Org
	gb     models.Org
}

// seedDemo creates a committee shaped like the spec's: 8 general branches, 130 branches
// with two party groups each, 3,000 members with Chinese names, a secretary per branch
// and per general branch, a leader and an admin, and months of activity in the ledger
// (seedDemoActivity), whose claims show photos kept in store. Given the same day, it is
// deterministic, but for the name of the photos' folder.
func seedDemo(tx *gorm.DB, months int, loc *time.Location, now time.Time, store BlobStore) (models.Org, []DemoLogin, error) {
	rng := rand.New(rand.NewPCG(2026, 7))
	root, err := createOrg(tx, nil, models.KindCommittee, "示范大学党委")
	if err != nil {
		return root, nil, err
	}
	var branches []demoBranch
	var generals []models.Org
	for gi, gname := range demoGeneralBranches {
		gb, err := createOrg(tx, &root, models.KindGeneralBranch, gname)
		if err != nil {
			return root, nil, err
		}
		generals = append(generals, gb)
		count := demoBranches / len(demoGeneralBranches)
		if gi < demoBranches%len(demoGeneralBranches) {
			count++
		}
		for bi := 0; bi < count; bi++ {
			name := fmt.Sprintf(demoBranchKinds[bi%len(demoBranchKinds)], demoOrdinals[(bi/len(demoBranchKinds))%len(demoOrdinals)])
			b, err := createOrg(tx, &gb, models.KindBranch, name)
			if err != nil {
				return root, nil, err
			}
			info := demoBranch{org: b, gb: gb}
			for g := range info.groups {
				if info.groups[g], err = createOrg(tx, &b, models.KindGroup, "第"+demoOrdinals[g]+"党小组"); err != nil {
					return root, nil, err
				}
			}
			branches = append(branches, info)
		}
	}
	created := now.UTC().Truncate(time.Microsecond)
	members := make([]models.Member, 0, demoMembers)
	for i := 0; i < demoMembers; i++ {
		b := branches[i%len(branches)]
		name := string(demoSurnames[rng.IntN(len(demoSurnames))]) + string(demoGiven[rng.IntN(len(demoGiven))])
		if rng.IntN(3) > 0 {
			name += string(demoGiven[rng.IntN(len(demoGiven))])
		}
		g := b.groups[(i/len(branches))%2].ID
		members = append(members, models.Member{MemberNo: fmt.Sprintf("D%05d", i+1), Name: name, BranchID: b.org.ID, GroupID: &g,
			Status: models.StatusActive, CreatedAt: created, UpdatedAt: created})
	}
	if err := tx.CreateInBatches(members, 500).Error; err != nil {
		return root, nil, fmt.Errorf("seed demo members: %w", err)
	}
	// Member i sits in branch i % 130, so members 1..130 are the first of their branches.
	var roles []models.MemberRole
	for i := range branches {
		roles = append(roles, models.MemberRole{MemberID: members[i].ID, Role: models.RoleSecretary, OrgID: branches[i].org.ID, CreatedAt: created})
	}
	for gi, gb := range generals {
		m := members[len(branches)+gi] // the second member of one of the branches
		roles = append(roles, models.MemberRole{MemberID: m.ID, Role: models.RoleSecretary, OrgID: gb.ID, CreatedAt: created})
	}
	leader := members[len(branches)+len(generals)]
	admin := members[len(branches)+len(generals)+1]
	roles = append(roles,
		models.MemberRole{MemberID: leader.ID, Role: models.RoleLeader, OrgID: root.ID, CreatedAt: created},
		models.MemberRole{MemberID: admin.ID, Role: models.RoleAdmin, OrgID: root.ID, CreatedAt: created})
	if err := tx.CreateInBatches(roles, 500).Error; err != nil {
		return root, nil, fmt.Errorf("seed demo roles: %w", err)
	}
	if loc == nil {
		loc = time.UTC
	}
	if months < 1 {
		months = 1
	}
	if err := seedDemoActivity(tx, root, branches, members, admin, months, now, loc, rng, store); err != nil {
		return root, nil, err
	}
	plain := members[len(members)-1]
	logins := []DemoLogin{
		{Who: "member " + plain.Name + " of " + branches[(demoMembers-1)%len(branches)].org.Name, Code: "demo:" + plain.MemberNo},
		{Who: "secretary " + members[0].Name + " of " + branches[0].gb.Name + " " + branches[0].org.Name, Code: "demo:" + members[0].MemberNo},
		{Who: "leader " + leader.Name + " of " + root.Name, Code: "demo:" + leader.MemberNo},
		{Who: "admin " + admin.Name + " of " + root.Name, Code: "demo:" + admin.MemberNo},
	}
	return root, logins, nil
}
