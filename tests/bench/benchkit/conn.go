package benchkit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Conn is one keep-alive HTTP/1.1 connection for requests of a known size, written and read by
// hand: a load generator that shares the machine with what it measures should cost as
// little as it can (net/http's client spent about a tenth of the CPU of a load of small
// card changes on two cores).
type Conn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
	buf  []byte
}

// Dial opens a connection to addr (host:port).
func Dial(addr string) (*Conn, error) {
	c := &Conn{addr: addr, buf: make([]byte, 0, 1024)}
	return c, c.redial()
}

func (c *Conn) redial() error {
	if c.c != nil {
		c.c.Close()
	}
	nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return err
	}
	c.c, c.r = nc, bufio.NewReaderSize(nc, 4096)
	return nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Do sends method path with a JSON body and returns the response status, having read
// and discarded the body. A broken connection is redialled once.
func (c *Conn) Do(method, path string, body []byte) (int, error) {
	return c.DoType(method, path, "application/json", body)
}

// DoType is Do with a body of the given content type.
func (c *Conn) DoType(method, path, contentType string, body []byte) (int, error) {
	status, err := c.do(method, path, contentType, body)
	if err != nil {
		if rerr := c.redial(); rerr != nil {
			return 0, rerr
		}
		return c.do(method, path, contentType, body)
	}
	return status, nil
}

func (c *Conn) do(method, path, contentType string, body []byte) (int, error) {
	b := c.buf[:0]
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.addr...)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, contentType...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.buf = b
	if _, err := c.c.Write(b); err != nil {
		return 0, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, err
	}
	length := -1
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break
		}
		if len(h) > 16 && bytes.EqualFold(h[:15], []byte("Content-Length:")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(h[15:]))); err != nil {
				return 0, err
			}
		}
	}
	if length < 0 {
		return 0, errors.New("response without Content-Length")
	}
	if _, err := c.r.Discard(length); err != nil {
		return 0, err
	}
	return status, nil
}
