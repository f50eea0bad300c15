package s3obj

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"sync"
)

// hasher computes an upload's MD5 on its own goroutine, so that hashing
// one piece overlaps reading the next and sending the previous parts.
// A slice handed to write must not change until a later mark is done.
type hasher struct {
	h    hash.Hash
	ch   chan hashItem
	done chan struct{}
	once sync.Once
}

type hashItem struct {
	p    []byte
	mark chan struct{}
}

// hashPiece is how many bytes are read before they are handed to the
// hasher.
const hashPiece = 1 << 20

func newHasher() *hasher {
	x := &hasher{h: md5.New(), ch: make(chan hashItem, 64), done: make(chan struct{})}
	go func() {
		defer close(x.done)
		for it := range x.ch {
			if it.p != nil {
				x.h.Write(it.p)
			}
			if it.mark != nil {
				close(it.mark)
			}
		}
	}()
	return x
}

// mark returns a channel closed once everything written before is hashed.
func (x *hasher) mark() <-chan struct{} {
	m := make(chan struct{})
	x.ch <- hashItem{mark: m}
	return m
}

// close hashes what was written and stops the goroutine. It may be called
// more than once.
func (x *hasher) close() {
	x.once.Do(func() { close(x.ch) })
	<-x.done
}

// sum closes x and returns the MD5 of everything written.
func (x *hasher) sum() []byte {
	x.close()
	return x.h.Sum(nil)
}

func (x *hasher) sumHex() string { return hex.EncodeToString(x.sum()) }

// readPart fills buf from r, handing each piece read to x. Like
// io.ReadFull, it returns io.EOF if nothing was read and
// io.ErrUnexpectedEOF if r ended before buf was full.
func readPart(r io.Reader, buf []byte, x *hasher) (int, error) {
	n := 0
	for n < len(buf) {
		end := min(n+hashPiece, len(buf))
		m, err := io.ReadFull(r, buf[n:end])
		if m > 0 {
			x.ch <- hashItem{p: buf[n : n+m]}
		}
		n += m
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			if n == 0 {
				return 0, io.EOF
			}
			return n, io.ErrUnexpectedEOF
		case err != nil:
			return n, err
		}
	}
	return n, nil
}
