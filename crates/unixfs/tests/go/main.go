// Generator of tests/fixtures/go_chunks.txt: boxo's own rabin and buzhash splitters over the
// test data of tests/chunker_go.rs. Not built by cargo. To regenerate, in an empty directory:
//   - chunk/: boxo's chunker/rabin.go and chunker/buzhash.go, with go-buffer-pool replaced by a
//     package `gochunk/pool` whose Get(n) is make([]byte, n) and Put a no-op;
//   - wchunker/: github.com/whyrusleeping/chunker (chunker.go, polynomials.go) with a go.mod;
//   - go.mod: `module gochunk`, requiring and `replace`-ing github.com/whyrusleeping/chunker
//     => ./wchunker; this file as main.go; then `go run . > go_chunks.txt`.
// Prints the chunk lengths boxo's rabin and buzhash splitters produce for cairn's test data
// (xorshift64* bytes, as crates/unixfs/tests/chunker_go.rs generates them).
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	chunk "gochunk/chunk"
)

func data(n int, seed uint64) []byte {
	if seed == 0 {
		return make([]byte, n)
	}
	s := seed | 1
	out := make([]byte, 0, n+8)
	var b [8]byte
	for len(out) < n {
		s ^= s >> 12
		s ^= s << 25
		s ^= s >> 27
		binary.LittleEndian.PutUint64(b[:], s*0x2545F4914F6CDD1D)
		out = append(out, b[:]...)
	}
	return out[:n]
}

type splitter interface{ NextBytes() ([]byte, error) }

func run(name string, n int, seed uint64, mk func(io.Reader) splitter) {
	s := mk(bytes.NewReader(data(n, seed)))
	var lens []string
	for {
		c, err := s.NextBytes()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		lens = append(lens, fmt.Sprint(len(c)))
	}
	fmt.Printf("%s %d %d %s\n", name, n, seed, strings.Join(lens, ","))
}

func main() {
	rabin := func(min, avg, max uint64) func(io.Reader) splitter {
		return func(r io.Reader) splitter { return chunk.NewRabinMinMax(r, min, avg, max) }
	}
	buz := func(r io.Reader) splitter { return chunk.NewBuzhash(r) }
	run("rabin-87381-262144-393216", 8<<20, 1, rabin(87381, 262144, 393216))
	run("rabin-87381-262144-393216", 2<<20, 0, rabin(87381, 262144, 393216))
	run("rabin-16-2048-65536", 2<<20, 2, rabin(16, 2048, 65536))
	run("rabin-36-512-1024", 256<<10, 3, rabin(36, 512, 1024))
	run("rabin-1000-100000-200000", 3<<20+17, 6, rabin(1000, 100000, 200000))
	run("buzhash", 8<<20, 4, buz)
	run("buzhash", 600<<10, 5, buz)
	run("buzhash", (512<<10)+100, 7, buz)
	run("buzhash", 2<<20, 0, buz)
	run("buzhash", 100, 8, buz)
}
