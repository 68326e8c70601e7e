// Package dockerproxy serves Traefik a read-only view of the Docker engine
// API with container inspections cached.
//
// Traefik's Docker provider answers every start, die and health event by
// listing all containers and inspecting each of them, one request at a
// time: with hundreds of sites, a new site waits for hundreds of
// inspections before it is routed. The proxy keeps each inspection until
// an event about that container arrives, so a refresh costs one list and
// the inspections of what changed. It also means Traefik no longer holds
// the engine's socket: only a few GET endpoints pass.
//
// Consistency: the proxy follows the engine's events itself, on one
// stream, and relays them to its clients only after it has dropped the
// inspections they make stale. A client that sees an event therefore never
// gets an inspection older than it. While that stream is down, nothing is
// cached and clients' event streams end (Traefik then lists everything
// again when it reconnects).
package dockerproxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sync"
	"time"
)

// Proxy is an http.Handler in front of the engine's unix socket.
type Proxy struct {
	upstream *http.Client
	relay    *httputil.ReverseProxy
	log      *slog.Logger
	ctx      context.Context
	stop     context.CancelFunc

	mu      sync.Mutex
	live    bool // the event stream is up: the cache may be used
	cache   map[string][]byte
	gen     map[string]uint64 // bumped by each event about a container
	epoch   uint64            // bumped each time the event stream (re)starts
	clients map[*client]struct{}
	started bool

	// Hits and Misses count inspections served from the cache or fetched.
	Hits, Misses uint64
}

type client struct {
	types map[string]bool // event types wanted; empty means all
	ch    chan []byte
	done  chan struct{} // closed when the proxy drops the client
}

// New returns a proxy to the engine listening on the unix socket at path.
func New(socket string, log *slog.Logger) *Proxy {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	target := &url.URL{Scheme: "http", Host: "docker"}
	relay := httputil.NewSingleHostReverseProxy(target)
	relay.Transport = tr
	ctx, stop := context.WithCancel(context.Background())
	return &Proxy{
		ctx:      ctx,
		stop:     stop,
		upstream: &http.Client{Transport: tr},
		relay:    relay,
		log:      log,
		cache:    map[string][]byte{},
		gen:      map[string]uint64{},
		clients:  map[*client]struct{}{},
	}
}

var (
	version = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)
	inspect = regexp.MustCompile(`^/containers/([0-9a-f]{64})/json$`)
	// What Traefik's Docker provider asks for, and nothing else.
	allowed = regexp.MustCompile(`^/(_ping|version|events|containers/json|containers/[^/]+/json)$`)
)

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := version.ReplaceAllString(r.URL.Path, "")
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || !allowed.MatchString(path) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(map[string]string{"message": "darse docker proxy: " + r.Method + " " + path + " is not allowed (read-only, for Traefik)"})
		return
	}
	switch {
	case path == "/events":
		p.events(w, r)
	case inspect.MatchString(path) && r.Method == http.MethodGet:
		p.inspect(w, r, inspect.FindStringSubmatch(path)[1])
	default:
		p.relay.ServeHTTP(w, r)
	}
}

// inspect serves a container's inspection from the cache, or fetches it
// and keeps it unless an event about the container arrived meanwhile.
func (p *Proxy) inspect(w http.ResponseWriter, r *http.Request, id string) {
	p.ensureEvents()
	p.mu.Lock()
	body, ok := p.cache[id]
	gen, epoch, live := p.gen[id], p.epoch, p.live
	if ok {
		p.Hits++
	} else {
		p.Misses++
	}
	p.mu.Unlock()
	if ok {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://docker"+r.URL.RequestURI(), nil)
	resp, err := p.upstream.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if resp.StatusCode == http.StatusOK && live {
		p.mu.Lock()
		if p.live && p.epoch == epoch && p.gen[id] == gen {
			p.cache[id] = body
		}
		p.mu.Unlock()
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

// events relays the proxy's own event stream to a client.
func (p *Proxy) events(w http.ResponseWriter, r *http.Request) {
	types, ok := typeFilter(r.URL.Query().Get("filters"))
	if !ok || r.URL.Query().Get("since") != "" || r.URL.Query().Get("until") != "" {
		p.relay.ServeHTTP(w, r) // not what Traefik asks: the engine answers it
		return
	}
	p.ensureEvents()
	c := &client{types: types, ch: make(chan []byte, 256), done: make(chan struct{})}
	p.mu.Lock()
	live := p.live
	if live {
		p.clients[c] = struct{}{}
	}
	p.mu.Unlock()
	if !live {
		http.Error(w, "darse docker proxy: the engine's event stream is down", http.StatusBadGateway)
		return
	}
	defer func() {
		p.mu.Lock()
		delete(p.clients, c)
		p.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	for {
		select {
		case b := <-c.ch:
			if _, err := w.Write(b); err != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		case <-c.done:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// typeFilter reads the filters query parameter when it filters on event
// types only (both of the engine's encodings); ok is false otherwise.
func typeFilter(s string) (map[string]bool, bool) {
	types := map[string]bool{}
	if s == "" {
		return types, true
	}
	var f map[string]json.RawMessage
	if json.Unmarshal([]byte(s), &f) != nil {
		return nil, false
	}
	for k, v := range f {
		if k != "type" {
			return nil, false
		}
		var set map[string]bool
		var list []string
		switch {
		case json.Unmarshal(v, &set) == nil:
			for t, on := range set {
				types[t] = types[t] || on
			}
		case json.Unmarshal(v, &list) == nil:
			for _, t := range list {
				types[t] = true
			}
		default:
			return nil, false
		}
	}
	return types, true
}

// Close stops following the engine's events.
func (p *Proxy) Close() { p.stop() }

// ensureEvents starts following the engine's events, once.
func (p *Proxy) ensureEvents() {
	p.mu.Lock()
	start := !p.started
	p.started = true
	p.mu.Unlock()
	if !start {
		return
	}
	ready := make(chan struct{})
	go p.follow(ready)
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
	}
}

// follow keeps one event stream open for as long as the proxy lives.
func (p *Proxy) follow(ready chan struct{}) {
	once := sync.OnceFunc(func() { close(ready) })
	defer once()
	wait := 100 * time.Millisecond
	for {
		err := p.stream(once)
		p.mu.Lock()
		p.live = false
		p.cache = map[string][]byte{}
		for c := range p.clients {
			close(c.done)
			delete(p.clients, c)
		}
		p.mu.Unlock()
		once()
		if p.ctx.Err() != nil {
			return
		}
		p.log.Warn("engine event stream ended; nothing is cached until it is back", "err", err, "retry", wait)
		select {
		case <-time.After(wait):
		case <-p.ctx.Done():
			return
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// maxGens bounds the memory of containers seen.
const maxGens = 100000

// event is what the proxy reads of an engine event.
type event struct {
	Type  string `json:"Type"`
	Actor struct {
		ID         string            `json:"ID"`
		Attributes map[string]string `json:"Attributes"`
	} `json:"Actor"`
}

func (p *Proxy) stream(connected func()) error {
	req, _ := http.NewRequestWithContext(p.ctx, http.MethodGet, "http://docker/events", nil)
	resp, err := p.upstream.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("GET /events: " + resp.Status)
	}
	p.mu.Lock()
	p.live = true
	p.epoch++
	p.cache = map[string][]byte{}
	p.mu.Unlock()
	p.log.Info("following the engine's events")
	connected()
	rd := bufio.NewReader(resp.Body)
	dec := json.NewDecoder(rd)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		var ev event
		if err := json.Unmarshal(raw, &ev); err != nil {
			return err
		}
		line := append(raw, '\n')
		p.mu.Lock()
		for _, id := range []string{ev.Actor.ID, ev.Actor.Attributes["container"]} {
			if id != "" && (ev.Type == "container" || ev.Type == "network") {
				delete(p.cache, id)
				p.gen[id]++
			}
		}
		if len(p.gen) > maxGens {
			// Ids of containers long gone: start afresh; a fetch begun
			// before this cannot store what it gets (the epoch changed).
			p.gen, p.cache = map[string]uint64{}, map[string][]byte{}
			p.epoch++
		}
		for c := range p.clients {
			if len(c.types) > 0 && !c.types[ev.Type] {
				continue
			}
			select {
			case c.ch <- line:
			default: // a client this far behind is dropped: it will list again
				close(c.done)
				delete(p.clients, c)
			}
		}
		p.mu.Unlock()
	}
}
