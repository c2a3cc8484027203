//go:build ignore

// Command cleanup deletes the RabbitMQ queues and exchanges whose names
// start with a prefix (bench runs name theirs sbbench.<stamp>.…):
//
//	go run bench/cleanup.go [-amqp URL] PREFIX
//
// It lists names with rabbitmqctl (AMQP cannot list) and deletes them over
// AMQP, which is much faster than one rabbitmqctl call per name.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	url := flag.String("amqp", "amqp://guest:guest@127.0.0.1:5672/", "broker URL")
	flag.Parse()
	prefix := flag.Arg(0)
	if len(prefix) < 3 {
		fmt.Fprintln(os.Stderr, "usage: cleanup [-amqp URL] PREFIX (at least 3 characters)")
		os.Exit(2)
	}
	conn, err := amqp.Dial(*url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
		os.Exit(1)
	}
	defer conn.Close()
	deleted := 0
	for _, kind := range []string{"queues", "exchanges"} {
		out, err := exec.Command("rabbitmqctl", "list_"+kind, "-q", "name").Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, "cleanup: rabbitmqctl:", err)
			os.Exit(1)
		}
		for _, name := range strings.Fields(string(out)) {
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			ch, err := conn.Channel() // a failed delete closes the channel
			if err != nil {
				fmt.Fprintln(os.Stderr, "cleanup:", err)
				os.Exit(1)
			}
			if kind == "queues" {
				_, err = ch.QueueDelete(name, false, false, false)
			} else {
				err = ch.ExchangeDelete(name, false, false)
			}
			ch.Close()
			if err == nil {
				deleted++
			}
		}
	}
	fmt.Printf("cleanup: deleted %d queues and exchanges starting with %q\n", deleted, prefix)
}
