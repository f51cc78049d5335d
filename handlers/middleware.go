package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"partyledger/app"
	"partyledger/models"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	// speculative counts the reads that ran beside their caller's lookup (authRead), by
	// whether the answer was kept or the caller had changed and the read was done again.
	speculative *prometheus.CounterVec
}

func newHTTPMetrics(reg *prometheus.Registry) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "HTTP requests by method, route template and status."},
			[]string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "http_request_duration_seconds", Help: "HTTP request latency by method and route template.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"method", "route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "http_requests_in_flight", Help: "HTTP requests being served."}),
		speculative: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledger_speculative_reads_total",
			Help: "Reads run beside their caller's lookup, by outcome: kept, or redone because the caller's roles or status had changed."}, []string{"outcome"}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight, m.speculative, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// knownMethods keeps the method label to a fixed set whatever clients send.
var knownMethods = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "HEAD": true, "OPTIONS": true}

// routeLabel is the route template of the request ("/api/v1/members/:id"), never the raw
// path, so random paths cannot create metric series; unmatched requests share one label.
func routeLabel(c *fiber.Ctx) string {
	// A request no route matched is left on the catch-all middleware route "/"; no
	// endpoint is registered at "/".
	if r := c.Route(); r != nil && r.Path != "/" && r.Path != "" {
		return r.Path
	}
	return "unmatched"
}

var requestIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

type ctxKey int

const (
	keyActor ctxKey = iota
	keyClientIP
	keyRequestCtx // the request's context before its deadline, for routes with another
	keyAllowed    // a claim's submission was taken from its allowances (see submitClaim)
)

// observe runs around every request: it assigns the request id (a well-formed incoming
// X-Request-ID is kept), works out the client IP, puts a logger carrying both into the
// request context, turns panics into 500s, and records the access log line and metrics.
func (s *Server) observe(c *fiber.Ctx) (err error) {
	start := time.Now()
	rid := c.Get(fiber.HeaderXRequestID)
	if !requestIDRe.MatchString(rid) {
		rid = newRequestID()
	}
	c.Set(fiber.HeaderXRequestID, rid)
	ip := s.clientIP(c)
	c.Locals(keyClientIP, ip)
	ctx := app.WithRequestID(c.UserContext(), rid)
	c.Locals(keyRequestCtx, ctx)
	work, cancel := context.WithTimeout(ctx, s.RequestTimeout)
	defer cancel()
	c.SetUserContext(work)
	s.metrics.inFlight.Inc()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
			if herr := s.errorHandler(c, err); herr != nil {
				c.Status(fiber.StatusInternalServerError)
			}
			err = nil
		}
		s.metrics.inFlight.Dec()
		status := c.Response().StatusCode()
		method := c.Method()
		if !knownMethods[method] {
			method = "OTHER"
		}
		route := routeLabel(c)
		elapsed := time.Since(start)
		s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
		s.metrics.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
		s.Log.LogAttrs(ctx, slog.LevelInfo, "request", slog.String("method", method), slog.String("route", route), slog.Int("status", status),
			slog.Float64("ms", float64(elapsed.Microseconds())/1000), slog.String("ip", ip))
	}()
	if err = c.Next(); err != nil {
		if herr := s.errorHandler(c, err); herr != nil {
			return herr
		}
	}
	return nil
}

// bulk gives a route whose work grows with its input (a roster of 10,000 rows, a
// committee's report) the deadline of bulk work in place of the request timeout, which
// is sized for one row's worth of work and would cut a big import short on a slow disk.
func (s *Server) bulk(c *fiber.Ctx) error {
	ctx, _ := c.Locals(keyRequestCtx).(context.Context)
	if ctx == nil {
		ctx = c.UserContext()
	}
	work, cancel := context.WithTimeout(ctx, bulkTimeout)
	defer cancel()
	c.SetUserContext(work)
	return c.Next()
}

// bulkTimeout bounds a bulk request: the import of a roster, the preparing and the
// writing of a report.
const bulkTimeout = 2 * time.Minute

func newRequestID() string {
	var b [12]byte
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[rand.IntN(36)]
	}
	return string(b[:])
}

// clientIP is the peer's address, unless the peer is a trusted proxy: then it is the
// rightmost X-Forwarded-For address that is not itself a trusted proxy. A client that is
// not a trusted proxy cannot change its IP by sending X-Forwarded-For.
func (s *Server) clientIP(c *fiber.Ctx) string {
	peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return c.Context().RemoteIP().String()
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer.String()
	}
	xff := c.Get(fiber.HeaderXForwardedFor)
	parts := strings.Split(xff, ",")
	for i := len(parts) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(parts[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a.String()
		}
	}
	return peer.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func clientIP(c *fiber.Ctx) string {
	ip, _ := c.Locals(keyClientIP).(string)
	return ip
}

// auth requires a valid access token of an active member and puts the caller, with
// roles read from the database just now, into the request.
func (s *Server) auth(c *fiber.Ctx) error {
	id, err := s.bearer(c)
	if err != nil {
		return err
	}
	a, err := s.Identity.Actor(c.UserContext(), id)
	if err != nil {
		return err
	}
	c.Locals(keyActor, a)
	return c.Next()
}

// authWrite is auth for a write whose own transaction checks the caller's status and
// auth_rev (app.ErrActorChanged): the cached copy of the caller, when there is one, stands
// in for the lookup auth makes, and h runs with it. When the write finds the copy out of
// date, or h fails where a current copy might not have (a role the copy lacks), the caller
// is loaded as auth loads them and h runs once more, with them. A copy found current
// keeps h's answer. Nothing is written for a caller who is not current, and no answer
// leaves before the caller has been checked.
func (s *Server) authWrite(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := s.bearer(c)
		if err != nil {
			return err
		}
		a, cached := s.Identity.CachedActor(id)
		if !cached {
			if a, err = s.Identity.Actor(c.UserContext(), id); err != nil {
				return err
			}
		}
		c.Locals(keyActor, a)
		err = h(c)
		if err == nil || (!cached && !errors.Is(err, app.ErrActorChanged)) {
			return err
		}
		now, lerr := s.Identity.Actor(c.UserContext(), id)
		if lerr != nil {
			return lerr
		}
		if now == a && !errors.Is(err, app.ErrActorChanged) {
			return err // the copy was current: its answer stands
		}
		return redo(c, now, h)
	}
}

// bearer returns the member id of the request's access token.
func (s *Server) bearer(c *fiber.Ctx) (int64, error) {
	h := c.Get(fiber.HeaderAuthorization)
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="partyledger"`)
		return 0, models.Errorf(models.EUnauthorized, "send an access token: Authorization: Bearer <token>")
	}
	id, err := s.Identity.Tokens().ParseAccess(strings.TrimSpace(token))
	if err != nil {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="partyledger", error="invalid_token"`)
		return 0, err
	}
	return id, nil
}

// authRead is auth for a read with no side effects whose answer is a JSON body: it saves
// the caller's lookup its own round trip. When the caller's roles are cached, h runs with
// them while the lookup auth makes (status and auth_rev) is in flight. h's answer is kept
// only if the lookup finds the cached roles current; otherwise it is dropped, and h runs
// again with the caller as they are now (or the request fails as auth would fail it).
// Nothing is sent before the lookup is done, so every answer is one auth would give.
func (s *Server) authRead(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := s.bearer(c)
		if err != nil {
			return err
		}
		a, confirm, ok := s.Identity.SpeculativeActor(c.UserContext(), id)
		if !ok {
			if a, err = s.Identity.Actor(c.UserContext(), id); err != nil {
				return err
			}
			c.Locals(keyActor, a)
			return h(c)
		}
		c.Locals(keyActor, a)
		err = h(c)
		now, cerr := confirm()
		if cerr == nil && now == a {
			s.metrics.speculative.WithLabelValues("kept").Inc()
			return err
		}
		s.metrics.speculative.WithLabelValues("redone").Inc()
		if cerr != nil {
			c.Response().ResetBody()
			c.Status(fiber.StatusOK)
			return cerr
		}
		return redo(c, now, h)
	}
}

// redo drops what h answered with a copy of the caller that was out of date and runs h
// again with the caller as they are now.
func redo(c *fiber.Ctx, now *app.Actor, h fiber.Handler) error {
	c.Response().ResetBody()
	c.Status(fiber.StatusOK)
	c.Locals(keyActor, now)
	return h(c)
}

func actor(c *fiber.Ctx) *app.Actor {
	a, _ := c.Locals(keyActor).(*app.Actor)
	return a
}
