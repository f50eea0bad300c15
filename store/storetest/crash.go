package storetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// crashEnv names the directory the crash test's child writes to.
const crashEnv = "STRATUS_STORETEST_CRASH_DIR"

// crashWriters is how many concurrent writers the child runs.
const crashWriters = 8

// crashChild opens the store in dir and runs crashWriters writers until it
// is killed. Each transaction inserts a widget and a gadget, moves the
// writer's counter and emits an event: four records in four tables that
// must appear together or not at all. After each acknowledged commit it
// prints "ack <writer> <n>".
func crashChild(dir string, cfg Config) int {
	ctx := context.Background()
	b, err := cfg.Open(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child: open:", err)
		return 2
	}
	st, err := store.Open(ctx, b, Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child: store.Open:", err)
		return 2
	}
	out := bufio.NewWriterSize(os.Stdout, 64)
	var mu sync.Mutex
	report := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = out.WriteString(s)
		_ = out.Flush()
	}
	report("ready\n")
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			cid := fmt.Sprintf("writer-%d", w)
			n := 0
			if c, err := store.Get[Counter](nil, st.Snapshot(), counters, cid); err == nil {
				n = c.Value
			}
			for {
				n++
				id := fmt.Sprintf("w%d-%07d", w, n)
				err := st.Update(ctx, func(tx *store.Txn) error {
					c, err := store.Get[Counter](nil, tx, counters, cid)
					switch {
					case errors.Is(err, errdefs.ErrNotFound):
						c = &Counter{ID: cid}
					case err != nil:
						return err
					}
					c.Value = n
					if err := tx.Put(counters, c); err != nil {
						return err
					}
					if err := tx.Insert(widgets, &Widget{ID: id, Project: cid, Name: id, Count: n}); err != nil {
						return err
					}
					if err := tx.Insert(gadgets, &Gadget{ID: id, Widget: id}); err != nil {
						return err
					}
					return tx.Emit("test.widget.create", id, cid, nil)
				})
				if err != nil {
					fmt.Fprintln(os.Stderr, "crash child: update:", err)
					os.Exit(3)
				}
				report(fmt.Sprintf("ack %d %d\n", w, n))
			}
		})
	}
	wg.Wait()
	return 0
}

func testCrash(t *testing.T, cfg Config) {
	probe, err := cfg.Open(ctxT(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	durable := probe.Durable()
	_ = probe.Close()
	if !durable {
		t.Log("backend is not durable: a crash loses its state by design; no crash test")
		return
	}
	if !mainInstalled {
		t.Fatal("the crash test needs storetest.Main in the package's TestMain")
	}
	dir := t.TempDir()
	acked := make([]int, crashWriters) // highest n acknowledged per writer
	total := 0
	for round := range *crashes {
		n := crashRound(t, cfg, dir, acked, round)
		total += n
		if t.Failed() {
			return
		}
	}
	t.Logf("%d kills, %d acknowledged transactions checked", *crashes, total)
}

// crashRound runs the child once, kills it at a random moment, and checks
// the state it left. It returns how many acknowledgements it saw.
func crashRound(t *testing.T, cfg Config, dir string, acked []int, round int) int {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan int)
	go func() {
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" {
				close(ready)
				continue
			}
			var w, v int
			if _, err := fmt.Sscanf(line, "ack %d %d", &w, &v); err != nil || w < 0 || w >= crashWriters {
				t.Errorf("child said %q", line)
				continue
			}
			acked[w] = max(acked[w], v)
			n++
		}
		done <- n
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("crash child did not open the store in 60s")
	}
	// Kill at a random moment: sometimes at once, mostly mid-stream.
	time.Sleep(time.Duration(rand.IntN(80)) * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	n := <-done
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: child ended with %v, not by SIGKILL", round, err)
	}
	verifyCrashState(t, cfg, dir, acked, round)
	return n
}

func verifyCrashState(t *testing.T, cfg Config, dir string, acked []int, round int) {
	t.Helper()
	if cfg.Check != nil {
		if err := cfg.Check(dir); err != nil {
			t.Fatalf("round %d: consistency check: %v", round, err)
		}
	}
	ctx := ctxT(t)
	b, err := cfg.Open(ctx, dir)
	if err != nil {
		t.Fatalf("round %d: reopen: %v", round, err)
	}
	st, err := store.Open(ctx, b, Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatalf("round %d: store.Open after kill: %v", round, err)
	}
	defer st.Close()
	tx := st.Snapshot()
	events := map[string]bool{}
	for ev := range must(store.Events(nil, tx, 0)) {
		events[ev.ResourceID] = true
	}
	for w := range crashWriters {
		cid := fmt.Sprintf("writer-%d", w)
		have := 0
		if c, err := store.Get[Counter](nil, tx, counters, cid); err == nil {
			have = c.Value
		}
		if have < acked[w] {
			t.Fatalf("round %d: writer %d: acknowledged %d transactions, only %d survived", round, w, acked[w], have)
		}
		ws := collect(store.List[Widget](nil, tx, widgets, "project", cid))
		if len(ws) != have {
			t.Fatalf("round %d: writer %d: counter says %d, %d widgets exist (half-applied transaction)", round, w, have, len(ws))
		}
		for i, wd := range ws {
			if wd.Count != i+1 {
				t.Fatalf("round %d: writer %d: widget %d is %q (gap: half-applied transaction)", round, w, i+1, wd.ID)
			}
			if _, err := store.Get[Gadget](nil, tx, gadgets, wd.ID); err != nil {
				t.Fatalf("round %d: widget %s without its gadget: half-applied transaction", round, wd.ID)
			}
			if !events[wd.ID] {
				t.Fatalf("round %d: widget %s without its event: half-applied transaction", round, wd.ID)
			}
		}
		// Anything beyond the acknowledged may have committed unreported;
		// the child resumes from the stored counter.
		acked[w] = have
	}
	gs := collect(store.List[Gadget](nil, tx, gadgets, "id"))
	wsAll := collect(store.List[Widget](nil, tx, widgets, "id"))
	if len(gs) != len(wsAll) || len(events) != len(wsAll) {
		t.Fatalf("round %d: %d widgets, %d gadgets, %d events: half-applied transaction", round, len(wsAll), len(gs), len(events))
	}
}
