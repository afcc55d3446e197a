// Package hrmharness reports each test's result to the judge (evals/polyglot_harness.py).
//
// The test files import it, so its init() runs before any of the package under test: it reads the run's
// secret from stdin (a socket the driver filled) before candidate code can, and each test, wrapped in Run,
// reports "<secret> <pass|fail|skip> <name>" on the same socket. A test that panics, calls runtime.Goexit or
// never returns reports no pass.
package hrmharness

import (
	"os"
	"strings"
	"sync"
	"testing"
)

var (
	lock    sync.Mutex
	channel = os.Stdin
	secret  string
)

func init() {
	buffer := make([]byte, 32)
	n := 0
	for n < len(buffer) {
		k, err := channel.Read(buffer[n:])
		if k <= 0 || err != nil {
			break
		}
		n += k
	}
	secret = string(buffer[:n])
}

// Run runs one test's body and reports how it ended.
func Run(t *testing.T, body func()) {
	returned := false
	defer func() {
		status := "fail"
		if t.Skipped() {
			status = "skip"
		} else if returned && !t.Failed() {
			status = "pass"
		}
		lock.Lock()
		defer lock.Unlock()
		channel.Write([]byte(secret + " " + status + " " + strings.ReplaceAll(t.Name(), "\n", " ") + "\n"))
	}()
	body()
	returned = true
}
