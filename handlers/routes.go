package handlers

import "github.com/gofiber/fiber/v2"

// routes lists every endpoint of the service. Where a use case needs nothing but the
// caller, the path id and/or the body, it is wired directly (adapt.go).
func (s *Server) routes(f *fiber.App) {
	f.Get("/healthz", s.healthz)
	f.Get("/readyz", s.readyz)
	f.Get("/metrics", s.metricsHandler())
	f.Get("/openapi.yaml", s.openapi)

	v1 := "/api/v1"
	f.Post(v1+"/auth/wechat/login", s.wechatLogin)
	f.Post(v1+"/auth/wechat/bind", s.wechatBind)
	f.Post(v1+"/auth/password/login", s.passwordLogin)
	f.Post(v1+"/auth/refresh", s.refresh)
	f.Post(v1+"/auth/logout", s.auth, s.logout)
	f.Get(v1+"/me", s.auth, s.me)

	f.Get(v1+"/orgs", s.auth, s.listOrgs)
	f.Post(v1+"/orgs", s.auth, withBody(fiber.StatusCreated, s.Orgs.Create))
	f.Get(v1+"/orgs/:id", s.auth, byID(fiber.StatusOK, s.Orgs.Get))
	f.Patch(v1+"/orgs/:id", s.auth, byIDWithBody(fiber.StatusOK, s.Orgs.Update))

	f.Get(v1+"/members", s.auth, s.listMembers)
	f.Post(v1+"/members", s.auth, withBody(fiber.StatusCreated, s.Members.Create))
	f.Post(v1+"/members/import", s.bulk, s.auth, s.importMembers)
	f.Get(v1+"/members/:id", s.auth, byID(fiber.StatusOK, s.Members.Get))
	f.Patch(v1+"/members/:id", s.auth, s.updateMember)
	f.Post(v1+"/members/:id/invite", s.auth, byID(fiber.StatusCreated, s.Members.Invite))
	f.Get(v1+"/members/:id/roles", s.auth, s.getRoles)
	f.Put(v1+"/members/:id/roles", s.auth, s.setRoles)
	f.Get(v1+"/members/:id/entries", s.auth, s.listEntries)

	f.Get(v1+"/rules", s.auth, s.listRules)
	f.Post(v1+"/rules", s.auth, s.createRule)
	f.Patch(v1+"/rules/:code", s.auth, s.updateRule)

	f.Post(v1+"/entries", s.auth, withBody(fiber.StatusCreated, s.Ledger.Manual))
	f.Post(v1+"/entries/:id/reverse", s.auth, byIDWithReason(fiber.StatusCreated, s.Ledger.Reverse))
	f.Post(v1+"/periods/:period/close", s.auth, s.closePeriod)
	f.Post(v1+"/periods/:period/reopen", s.auth, s.reopenPeriod)
	f.Get(v1+"/audit", s.auth, s.listAudit)

	f.Post(v1+"/uploads", s.auth, s.createUpload)
	f.Get(v1+"/uploads/:id", s.auth, s.getUpload)
	f.Get(v1+"/posts", s.auth, s.listPosts)
	f.Post(v1+"/posts", s.auth, withBody(fiber.StatusCreated, s.Posts.Create))
	f.Post(v1+"/posts/:id/assignments", s.auth, byIDWithBody(fiber.StatusCreated, s.Posts.Assign))

	f.Post(v1+"/claims", s.authWrite(s.submitClaim))
	f.Get(v1+"/claims", s.auth, claimList(s.Claims.List))
	f.Get(v1+"/claims/:id", s.auth, byID(fiber.StatusOK, s.Claims.Get))
	f.Post(v1+"/claims/:id/withdraw", s.auth, byID(fiber.StatusOK, s.Claims.Withdraw))
	f.Post(v1+"/claims/:id/approve", s.authWrite(byID(fiber.StatusOK, s.Claims.Approve)))
	f.Post(v1+"/claims/:id/reject", s.auth, byIDWithReason(fiber.StatusOK, s.Claims.Reject))
	f.Get(v1+"/approvals", s.auth, claimList(s.Claims.Queue))
	f.Post(v1+"/approvals/batch", s.auth, s.batchDecide)

	f.Get(v1+"/activities", s.auth, s.listActivities)
	f.Post(v1+"/activities", s.auth, withBody(fiber.StatusCreated, s.Activities.Create))
	f.Post(v1+"/activities/:id/code", s.auth, byID(fiber.StatusOK, s.Activities.RotateCode))
	f.Post(v1+"/activities/:id/checkin", s.authWrite(byIDWithBody(fiber.StatusCreated, s.Activities.Checkin)))
	f.Get(v1+"/activities/:id/attendance", s.auth, s.attendance)

	f.Get(v1+"/members/:id/summary", s.authRead(s.memberSummary))
	f.Get(v1+"/branches/:id/summary", s.authRead(s.branchSummary))
	f.Get(v1+"/leaderboards/members", s.authRead(s.memberBoard))
	f.Get(v1+"/leaderboards/branches", s.authRead(s.branchBoard))

	f.Get(v1+"/reports/monthly", s.bulk, s.auth, s.report)

	f.Post(v1+"/appeals", s.auth, withBody(fiber.StatusCreated, s.Appeals.File))
	f.Get(v1+"/appeals", s.auth, s.listAppeals)
	f.Post(v1+"/appeals/:id/uphold", s.auth, byIDWithBody(fiber.StatusOK, s.Appeals.Uphold))
	f.Post(v1+"/appeals/:id/dismiss", s.auth, byIDWithReason(fiber.StatusOK, s.Appeals.Dismiss))
}
