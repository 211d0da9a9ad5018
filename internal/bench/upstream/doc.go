// Package upstream benchmarks upstream components next to this project's own,
// in the same `make bench` run. It is its own module because the upstream
// releases that still build here need their own collector core versions, which
// must never mix with the distribution's.
package upstream
