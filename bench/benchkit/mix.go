package benchkit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client calls the API on loopback.
type Client struct {
	Base string
	HTTP *http.Client
}

// NewClient is a client of the server at addr keeping up to conns connections.
func NewClient(addr string, conns int) *Client {
	return &Client{Base: "http://" + addr, HTTP: &http.Client{Timeout: 60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}}
}

// Do sends one request; hdr may add headers (an X-Request-ID among them).
func (c *Client) Do(method, path, tok string, body []byte, ctype string, hdr map[string]string) (int, []byte, error) {
	return c.DoContext(context.Background(), method, path, tok, body, ctype, hdr)
}

// DoContext is Do with a context (a deadline, or an httptrace.ClientTrace).
func (c *Client) DoContext(ctx context.Context, method, path, tok string, body []byte, ctype string, hdr map[string]string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// JSON sends v as a JSON body.
func (c *Client) JSON(method, path, tok string, v any, hdr map[string]string) (int, []byte, error) {
	b, _ := json.Marshal(v)
	return c.Do(method, path, tok, b, "application/json", hdr)
}

// Demo is the demo committee as the server lists it: member D%05d is member k = n-1, in
// branch k % 130, whose secretary is member k % 130 + 1; D00140 is the demo admin.
type Demo struct {
	IDs       []int64 // the 3,000 demo members
	Claimants []int64 // those who are not branch secretaries
	Admin     int64
	Committee int64 // the committee the demo builds
	noOf      map[int64]int
	idOf      map[int]int64
	branchOf  map[int64]int64
}

// SecretaryOf is the secretary of member id's branch.
func (d *Demo) SecretaryOf(id int64) int64 { return d.idOf[(d.noOf[id]-1)%130+1] }

// BranchOf is member id's branch.
func (d *Demo) BranchOf(id int64) int64 { return d.branchOf[id] }

// LoadDemo reads the demo roster through the API as the demo admin; key is the server's
// JWT key.
func LoadDemo(c *Client, key string) (*Demo, error) {
	d := &Demo{noOf: map[int64]int{}, idOf: map[int]int64{}, branchOf: map[int64]int64{}}
	// The demo writes its members in order, so D00140, its admin, has id 140.
	cursor, admin := "", Token(key, 140)
	st, body, err := c.Do("GET", "/api/v1/me", admin, nil, "", nil)
	if err != nil || st != 200 || !strings.Contains(string(body), `"D00140"`) {
		return nil, fmt.Errorf("member 140 is not the demo admin D00140 (is the server in demo mode?): %d %.200s %v", st, body, err)
	}
	var me struct {
		Roles []struct {
			Role  string `json:"role"`
			OrgID int64  `json:"org_id"`
		} `json:"roles"`
	}
	json.Unmarshal(body, &me)
	d.Admin = 140
	for _, r := range me.Roles {
		if r.Role == "admin" {
			d.Committee = r.OrgID
		}
	}
	for {
		st, body, err := c.Do("GET", "/api/v1/members?limit=100&cursor="+cursor, admin, nil, "", nil)
		if err != nil || st != 200 {
			return nil, fmt.Errorf("members: %d %s %v", st, body, err)
		}
		var page struct {
			Items []struct {
				ID       int64  `json:"id"`
				MemberNo string `json:"member_no"`
				BranchID int64  `json:"branch_id"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("members: %s", body)
		}
		for _, m := range page.Items {
			if n, err := strconv.Atoi(m.MemberNo[1:]); err == nil && m.MemberNo[0] == 'D' {
				d.IDs = append(d.IDs, m.ID)
				d.noOf[m.ID], d.idOf[n], d.branchOf[m.ID] = n, m.ID, m.BranchID
			}
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if len(d.IDs) != 3000 {
		return nil, fmt.Errorf("the demo has %d members, want 3000", len(d.IDs))
	}
	sort.Slice(d.IDs, func(i, j int) bool { return d.IDs[i] < d.IDs[j] })
	for _, id := range d.IDs {
		if d.noOf[id] > 130 {
			d.Claimants = append(d.Claimants, id)
		}
	}
	return d, nil
}

// Acks are the writes the server acknowledged: after a crash every one of them must be
// in the database.
type Acks struct {
	mu      sync.Mutex
	claims  map[int64]string // claim id → the last status the server acknowledged
	entries map[int64]bool
}

// NewAcks is an empty record.
func NewAcks() *Acks { return &Acks{claims: map[int64]string{}, entries: map[int64]bool{}} }

func (a *Acks) claim(id int64, status string) {
	a.mu.Lock()
	if a.claims[id] == "" || a.claims[id] == "pending" {
		a.claims[id] = status
	}
	a.mu.Unlock()
}

func (a *Acks) entry(id int64) {
	a.mu.Lock()
	a.entries[id] = true
	a.mu.Unlock()
}

// Counts is how many claims and entries were acknowledged.
func (a *Acks) Counts() (claims, entries int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.claims), len(a.entries)
}

// Check looks every acknowledged write up in db: each claim is there in the status the
// server last acknowledged (a pending one may since have been decided by a request whose
// answer never arrived), and each entry is there.
func (a *Acks) Check(db *sql.DB) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([]int64, 0, len(a.claims))
	for id := range a.claims {
		ids = append(ids, id)
	}
	found := map[int64]string{}
	if err := inChunks(db, "SELECT id, status FROM claims WHERE id IN ", ids, func(rows *sql.Rows) error {
		var id int64
		var st string
		if err := rows.Scan(&id, &st); err != nil {
			return err
		}
		found[id] = st
		return nil
	}); err != nil {
		return err
	}
	for _, id := range ids {
		want, got := a.claims[id], found[id]
		switch {
		case got == "":
			return fmt.Errorf("acknowledged claim %d is missing", id)
		case want == "pending" && (got == "approved" || got == "rejected"):
		case got != want:
			return fmt.Errorf("claim %d is %s, but %s was acknowledged", id, got, want)
		}
	}
	ids = ids[:0]
	for id := range a.entries {
		ids = append(ids, id)
	}
	seen := map[int64]bool{}
	if err := inChunks(db, "SELECT id FROM entries WHERE id IN ", ids, func(rows *sql.Rows) error {
		var id int64
		err := rows.Scan(&id)
		seen[id] = true
		return err
	}); err != nil {
		return err
	}
	for _, id := range ids {
		if !seen[id] {
			return fmt.Errorf("acknowledged entry %d is missing", id)
		}
	}
	return nil
}

func inChunks(db *sql.DB, query string, ids []int64, scan func(*sql.Rows) error) error {
	for len(ids) > 0 {
		n := min(len(ids), 500)
		parts := make([]string, n)
		for i, id := range ids[:n] {
			parts[i] = strconv.FormatInt(id, 10)
		}
		rows, err := db.Query(query + "(" + strings.Join(parts, ",") + ")")
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// Mix is the realistic traffic of a branch-heavy day: members reading their own points
// and checking in and claiming, secretaries deciding claims and opening activities,
// leaders reading leaderboards and summaries. Op runs one operation drawn by Weights.
type Mix struct {
	C      *Client
	Demo   *Demo
	Key    string
	Acks   *Acks
	Period string
	Day    string
	// Weights of each operation (see Ops); nil means DefaultWeights.
	Weights map[string]int

	ops      []string
	cum      []int
	seq      atomic.Int64
	mu       sync.Mutex
	photos   map[int64]int64    // member → an uploaded photo
	acts     map[int64]activity // branch → its current activity
	checked  map[[2]int64]bool  // (activity, member) checked in
	pending  []pendingClaim
	rngs     sync.Pool
	tokens   sync.Map
	rejectNo atomic.Int64
}

type activity struct {
	id   int64
	code string
}

type pendingClaim struct{ id, member int64 }

// DefaultWeights is the mix's share of each operation, in percent.
var DefaultWeights = map[string]int{
	"me": 12, "own_summary": 10, "own_entries": 8, "branch_board": 7, // members reading
	"claim": 20, "checkin": 15, // members writing
	"decide": 15, "open_activity": 1, // secretaries
	"province_board": 4, "branch_ranking": 4, "branch_summary": 4, // leaders
}

// Ops are the operation names, in a fixed order.
func Ops() []string {
	var names []string
	for k := range DefaultWeights {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Prepare opens an activity in every branch; call it once before Op.
func (m *Mix) Prepare() error {
	if m.Weights == nil {
		m.Weights = DefaultWeights
	}
	m.ops, m.cum = nil, nil
	total := 0
	for _, name := range Ops() {
		if w := m.Weights[name]; w > 0 {
			total += w
			m.ops, m.cum = append(m.ops, name), append(m.cum, total)
		}
	}
	m.photos, m.acts, m.checked = map[int64]int64{}, map[int64]activity{}, map[[2]int64]bool{}
	if m.Acks == nil {
		m.Acks = NewAcks()
	}
	branches := map[int64]int64{} // branch → secretary
	for _, id := range m.Demo.IDs {
		branches[m.Demo.BranchOf(id)] = m.Demo.SecretaryOf(id)
	}
	for b, sec := range branches {
		if _, f := m.openActivity(b, sec); f != nil {
			return fmt.Errorf("open activity: %s", f)
		}
	}
	return nil
}

func (m *Mix) token(id int64) string {
	if t, ok := m.tokens.Load(id); ok {
		return t.(string)
	}
	t := Token(m.Key, id)
	m.tokens.Store(id, t)
	return t
}

func (m *Mix) rng() *rand.Rand {
	if r, ok := m.rngs.Get().(*rand.Rand); ok {
		return r
	}
	return rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(m.seq.Add(1))))
}

// Op runs one operation and says which, and, when it failed, why (nil when it did not).
// hdr is sent with the request (an X-Request-ID, say).
func (m *Mix) Op(hdr map[string]string) (name string, failure *Failure) {
	r := m.rng()
	defer m.rngs.Put(r)
	x := r.IntN(m.cum[len(m.cum)-1])
	name = m.ops[sort.SearchInts(m.cum, x+1)]
	member := m.Demo.Claimants[r.IntN(len(m.Demo.Claimants))]
	switch name {
	case "me":
		return name, m.get("/api/v1/me", member, hdr)
	case "own_summary":
		return name, m.get(fmt.Sprintf("/api/v1/members/%d/summary?period=%s", member, m.Period), member, hdr)
	case "own_entries":
		return name, m.get(fmt.Sprintf("/api/v1/members/%d/entries?limit=20", member), member, hdr)
	case "branch_board":
		return name, m.get(fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d&period=%s&limit=20", m.Demo.BranchOf(member), m.Period), member, hdr)
	case "province_board":
		return name, m.get(fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d&period=%s&limit=50", m.Demo.Committee, m.Period), m.Demo.Admin, hdr)
	case "branch_ranking":
		by := []string{"average", "total", "completion"}[r.IntN(3)]
		return name, m.get(fmt.Sprintf("/api/v1/leaderboards/branches?org_id=%d&period=%s&by=%s&limit=50", m.Demo.Committee, m.Period, by), m.Demo.Admin, hdr)
	case "branch_summary":
		return name, m.get(fmt.Sprintf("/api/v1/branches/%d/summary?period=%s", m.Demo.BranchOf(member), m.Period), m.Demo.Admin, hdr)
	case "claim":
		return name, m.claim(r, member, hdr)
	case "checkin":
		return name, m.checkin(member, hdr)
	case "decide":
		return name, m.decide(r, hdr)
	case "open_activity":
		_, f := m.openActivity(m.Demo.BranchOf(member), m.Demo.SecretaryOf(member))
		return name, f
	}
	return name, &Failure{Msg: "unknown operation " + name}
}

func (m *Mix) get(path string, who int64, hdr map[string]string) *Failure {
	st, body, err := m.C.Do("GET", path, m.token(who), nil, "", hdr)
	return failed(st, 200, body, err)
}

// Failure is why an operation did not get the answer it wanted: the HTTP status it got
// (0 when no answer came at all) and what came with it.
type Failure struct {
	Status int
	Msg    string
}

// String is the failure for a report; "" for none.
func (f *Failure) String() string {
	switch {
	case f == nil:
		return ""
	case f.Status == 0:
		return f.Msg
	}
	return fmt.Sprintf("%d %s", f.Status, f.Msg)
}

func failed(st, want int, body []byte, err error) *Failure {
	if err != nil {
		return &Failure{Msg: err.Error()}
	}
	if st != want {
		return &Failure{Status: st, Msg: fmt.Sprintf("%.200s", body)}
	}
	return nil
}

var photo = append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 2048)...)

func (m *Mix) claim(r *rand.Rand, member int64, hdr map[string]string) *Failure {
	m.mu.Lock()
	ph, ok := m.photos[member]
	m.mu.Unlock()
	if !ok {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		fw, _ := w.CreateFormFile("file", "p.png")
		fw.Write(photo)
		w.Close()
		st, body, err := m.C.Do("POST", "/api/v1/uploads", m.token(member), buf.Bytes(), w.FormDataContentType(), nil)
		if f := failed(st, 201, body, err); f != nil {
			f.Msg = "upload: " + f.Msg
			return f
		}
		var u struct{ ID int64 }
		json.Unmarshal(body, &u)
		m.mu.Lock()
		m.photos[member], ph = u.ID, u.ID
		m.mu.Unlock()
	}
	rule := []string{"four_ones.listen_masses", "four_ones.guide_activists", "four_ones.read_theory", "four_ones.volunteer", "volunteer.hours"}[r.IntN(5)]
	body := map[string]any{"rule_code": rule, "occurred_on": m.Day, "evidence_ids": []int64{ph}, "note": "学习笔记"}
	if rule == "volunteer.hours" {
		body["quantity"] = float64(1+r.IntN(6)) / 2
	}
	h := map[string]string{"Idempotency-Key": fmt.Sprintf("mix-%d-%d", time.Now().UnixNano(), m.seq.Add(1))}
	for k, v := range hdr {
		h[k] = v
	}
	st, resp, err := m.C.JSON("POST", "/api/v1/claims", m.token(member), body, h)
	if f := failed(st, 201, resp, err); f != nil {
		return f
	}
	var c struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
	}
	json.Unmarshal(resp, &c)
	m.Acks.claim(c.ID, c.Status)
	m.mu.Lock()
	m.pending = append(m.pending, pendingClaim{c.ID, member})
	m.mu.Unlock()
	return nil
}

func (m *Mix) decide(r *rand.Rand, hdr map[string]string) *Failure {
	m.mu.Lock()
	if len(m.pending) == 0 {
		m.mu.Unlock()
		// Nothing to decide: the secretary looks at the queue.
		sec := m.Demo.SecretaryOf(m.Demo.Claimants[r.IntN(len(m.Demo.Claimants))])
		return m.get("/api/v1/claims?status=pending&limit=20", sec, hdr)
	}
	i := r.IntN(len(m.pending))
	c := m.pending[i]
	m.pending[i] = m.pending[len(m.pending)-1]
	m.pending = m.pending[:len(m.pending)-1]
	m.mu.Unlock()
	sec := m.token(m.Demo.SecretaryOf(c.member))
	if r.IntN(5) == 0 { // the answer is the claim
		st, body, err := m.C.JSON("POST", fmt.Sprintf("/api/v1/claims/%d/reject", c.id), sec, map[string]any{"reason": "材料不全，请补充"}, hdr)
		if f := failed(st, 200, body, err); f != nil {
			return f
		}
		var cl struct {
			Status string `json:"status"`
		}
		json.Unmarshal(body, &cl)
		m.Acks.claim(c.id, cl.Status)
		return nil
	}
	st, body, err := m.C.Do("POST", fmt.Sprintf("/api/v1/claims/%d/approve", c.id), sec, nil, "", hdr)
	if f := failed(st, 200, body, err); f != nil {
		return f
	}
	var d struct { // the answer is the decision
		Claim struct {
			Status string `json:"status"`
		} `json:"claim"`
		Entry *struct {
			ID int64 `json:"id"`
		} `json:"entry"`
	}
	json.Unmarshal(body, &d)
	m.Acks.claim(c.id, d.Claim.Status)
	if d.Entry != nil {
		m.Acks.entry(d.Entry.ID)
	}
	return nil
}

func (m *Mix) checkin(member int64, hdr map[string]string) *Failure {
	m.mu.Lock()
	act, ok := m.acts[m.Demo.BranchOf(member)]
	key := [2]int64{act.id, member}
	if ok && m.checked[key] {
		ok = false
	}
	m.checked[key] = true
	m.mu.Unlock()
	if !ok { // checked in already: reads their points instead, as a member would
		return m.get(fmt.Sprintf("/api/v1/members/%d/summary?period=%s", member, m.Period), member, hdr)
	}
	st, body, err := m.C.JSON("POST", fmt.Sprintf("/api/v1/activities/%d/checkin", act.id), m.token(member), map[string]any{"code": act.code}, hdr)
	if f := failed(st, 201, body, err); f != nil {
		return f
	}
	var res struct {
		Entry *struct {
			ID int64 `json:"id"`
		} `json:"entry"`
	}
	if json.Unmarshal(body, &res) == nil && res.Entry != nil {
		m.Acks.entry(res.Entry.ID)
	}
	return nil
}

func (m *Mix) openActivity(branch, secretary int64) (int64, *Failure) {
	now := time.Now()
	st, body, err := m.C.JSON("POST", "/api/v1/activities", m.token(secretary), map[string]any{"org_id": branch, "title": "主题党日",
		"rule_code": "meeting.attend", "starts_at": now.Add(-time.Minute).Format(time.RFC3339), "ends_at": now.Add(3 * time.Hour).Format(time.RFC3339)}, nil)
	if f := failed(st, 201, body, err); f != nil {
		return 0, f
	}
	var a struct {
		ID   int64  `json:"id"`
		Code string `json:"checkin_code"`
	}
	json.Unmarshal(body, &a)
	m.mu.Lock()
	m.acts[branch] = activity{a.ID, a.Code}
	m.mu.Unlock()
	return a.ID, nil
}

// ThisMonth is the period and a day in it (today) in China Standard Time.
func ThisMonth() (period, day string) {
	cst := time.Now().In(time.FixedZone("CST", 8*3600))
	return cst.Format("2006-01"), cst.Format("2006-01-02")
}

// Stage is what an open-loop run at a fixed arrival rate did.
type Stage struct {
	Target   float64 // requests a second asked for
	Done     int64
	Failed   int64
	Elapsed  time.Duration
	FirstErr string
	Lat      []time.Duration            // from each request's scheduled start, so a stall counts in full
	ByOp     map[string][]time.Duration // the same, per operation
}

// Rate is completed requests a second.
func (s Stage) Rate() float64 { return float64(s.Done) / s.Elapsed.Seconds() }

// Pct is the p-th quantile (0..1) of lat.
func Pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// RunAt starts op at rate a second for d, open loop: requests are scheduled on the clock
// whether or not the earlier ones have finished (up to workers at once), and each
// latency counts from the scheduled start, so a slow server cannot hide its queue.
func RunAt(rate float64, d time.Duration, workers int, op func() (name, failure string)) Stage {
	type job struct{ at time.Time }
	jobs := make(chan job, 100000)
	st := Stage{Target: rate, ByOp: map[string][]time.Duration{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if wait := time.Until(j.at); wait > 0 {
					time.Sleep(wait)
				}
				name, fail := op()
				lat := time.Since(j.at)
				mu.Lock()
				st.Lat = append(st.Lat, lat)
				st.ByOp[name] = append(st.ByOp[name], lat)
				if fail != "" {
					if st.Failed++; st.Failed == 1 {
						st.FirstErr = name + ": " + fail
					}
				} else {
					st.Done++
				}
				mu.Unlock()
			}
		}()
	}
	t0 := time.Now()
	n := int(rate * d.Seconds())
	for i := 0; i < n; i++ {
		jobs <- job{t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))}
	}
	close(jobs)
	wg.Wait()
	st.Elapsed = time.Since(t0)
	return st
}
