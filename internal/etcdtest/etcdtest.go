// Package etcdtest runs real etcd members in the test process (etcd's own
// server, embedded), on loopback ports, for the tests of store/etcdstore
// and of anything that runs on it. Members can be stopped and restarted to
// test failures.
package etcdtest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Cluster is a set of embedded etcd members on loopback.
type Cluster struct {
	dir     string
	members []*Member
}

// Member is one etcd member.
type Member struct {
	mu     sync.Mutex
	cfg    *embed.Config
	etcd   *embed.Etcd
	Name   string
	Client string // client URL
}

// Start starts an n-member cluster whose data lives under dir. It returns
// once the cluster has a leader.
func Start(dir string, n int) (*Cluster, error) {
	c := &Cluster{dir: dir}
	var initial []string
	for i := range n {
		cport, err := freePort()
		if err != nil {
			return nil, err
		}
		pport, err := freePort()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("m%d", i)
		cfg := embed.NewConfig()
		cfg.Name = name
		cfg.Dir = filepath.Join(dir, name)
		cfg.LogLevel = "error"
		cfg.LogOutputs = []string{filepath.Join(dir, name+".log")}
		cfg.MaxTxnOps = 1 << 16
		cfg.MaxRequestBytes = 64 << 20
		cu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", cport))
		pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", pport))
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
		cfg.InitialClusterToken = "stratus-test"
		cfg.ElectionMs = 200
		cfg.TickMs = 20
		initial = append(initial, name+"="+pu.String())
		c.members = append(c.members, &Member{cfg: cfg, Name: name, Client: cu.String()})
	}
	for _, m := range c.members {
		m.cfg.InitialCluster = strings.Join(initial, ",")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Members of a new cluster must start together.
	errs := make(chan error, n)
	for _, m := range c.members {
		go func() { errs <- m.start() }()
	}
	for range n {
		if err := <-errs; err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

func (m *Member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := embed.StartEtcd(m.cfg)
	if err != nil {
		return fmt.Errorf("etcdtest: start %s: %w", m.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return fmt.Errorf("etcdtest: %s not ready in 60s", m.Name)
	}
	m.etcd = e
	m.cfg.ClusterState = embed.ClusterStateFlagExisting
	return nil
}

// Endpoints returns every member's client URL.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.Client)
	}
	return out
}

// Members returns the members.
func (c *Cluster) Members() []*Member { return c.members }

// Leader returns the member that is leader now, or nil.
func (c *Cluster) Leader() *Member {
	for _, m := range c.members {
		m.mu.Lock()
		e := m.etcd
		m.mu.Unlock()
		if e != nil && e.Server.Leader() == e.Server.MemberID() {
			return m
		}
	}
	return nil
}

// Stop stops the member (as a crash would, but its data stays).
func (m *Member) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd != nil {
		m.etcd.Close()
		m.etcd = nil
	}
}

// Restart starts a stopped member again on its data.
func (m *Member) Restart() error { return m.start() }

// Stop stops every member.
func (c *Cluster) Stop() {
	for _, m := range c.members {
		m.Stop()
	}
}

// freePort picks a free port below Linux's ephemeral range (32768 and up),
// so that a stopped member's port is not taken by some outgoing connection
// before the member restarts.
func freePort() (int, error) {
	for range 100 {
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return 0, fmt.Errorf("etcdtest: no free port found")
}
