// Command testserver is the HTTP server of Skiff's test image. It answers
// with what a test wants to check about the container it runs in:
//
//	/           the hostname
//	/hostname   the hostname
//	/version    $VERSION (set by the image), for rollouts
//	/echo?msg=  msg
//	/healthz    200, or 500 after -fail-after or while /tmp/unhealthy exists
//	/env        the environment, one KEY=VALUE a line
//	/exit?code= exits the process with code
//
// With -udp-port it also echoes UDP datagrams. It uses only the standard
// library, so it builds into a static binary for a scratch-like image.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	port := flag.Int("port", 8080, "TCP port of the HTTP server")
	udpPort := flag.Int("udp-port", 0, "UDP port to echo datagrams on (0: none)")
	failAfter := flag.Duration("fail-after", 0, "after this long, /healthz answers 500 (0: never)")
	flag.Parse()

	start := time.Now()
	if *udpPort != 0 {
		go udpEcho(*udpPort)
	}
	mux := http.NewServeMux()
	hostname := func(w http.ResponseWriter, _ *http.Request) {
		h, _ := os.Hostname()
		fmt.Fprintln(w, h)
	}
	mux.HandleFunc("/{$}", hostname)
	mux.HandleFunc("/hostname", hostname)
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, os.Getenv("VERSION"))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.URL.Query().Get("msg"))
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if _, err := os.Stat("/tmp/unhealthy"); err == nil {
			http.Error(w, "unhealthy: /tmp/unhealthy exists", http.StatusInternalServerError)
			return
		}
		if *failAfter > 0 && time.Since(start) > *failAfter {
			http.Error(w, "unhealthy: failing after "+failAfter.String(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, _ *http.Request) {
		env := os.Environ()
		sort.Strings(env)
		fmt.Fprintln(w, strings.Join(env, "\n"))
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil {
			http.Error(w, "code must be a number", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "exiting with %d\n", code)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go func() {
			time.Sleep(100 * time.Millisecond)
			os.Exit(code)
		}()
	})
	addr := fmt.Sprintf(":%d", *port)
	log.Printf("testserver listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, mux))
}

func udpEcho(port int) {
	conn, err := net.ListenPacket("udp", fmt.Sprintf(":%d", port))
	if err != nil {
		log.Fatalf("udp: %v", err)
	}
	log.Printf("testserver echoing UDP on :%d", port)
	buf := make([]byte, 65536)
	for {
		n, addr, err := conn.ReadFrom(buf)
		if err != nil {
			log.Fatalf("udp: %v", err)
		}
		if _, err := conn.WriteTo(buf[:n], addr); err != nil {
			log.Printf("udp reply: %v", err)
		}
	}
}
