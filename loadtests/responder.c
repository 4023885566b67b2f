/* The load generator's ceiling: an HTTP/1.1 keep-alive responder far cheaper than any server measured.
 * One thread, epoll; reads each request's headers and Content-Length body, answers 202 with a fixed body.
 * Built by loadtests/generator.py with the system's cc; `responder PORT` listens on 127.0.0.1:PORT. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define CAP (1 << 20)
static const char REPLY[] =
    "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 14\r\n\r\n{\"accepted\":1}";

struct conn { int fd; size_t len; char *buf; };

static long content_length(const char *head, size_t n) {
  const char *p = head, *end = head + n;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) break;
    if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0) return strtol(p + 15, NULL, 10);
    p = eol + 1;
  }
  return 0;
}

/* Answer every complete request in the buffer; returns -1 when the connection must close. */
static int serve(struct conn *c) {
  size_t off = 0;
  int answers = 0;
  static char out[64 * sizeof(REPLY)];
  size_t outlen = 0;
  for (;;) {
    char *start = c->buf + off;
    size_t avail = c->len - off;
    char *hend = avail >= 4 ? memmem(start, avail, "\r\n\r\n", 4) : NULL;
    if (!hend) break;
    size_t head = (size_t)(hend - start) + 4;
    long body = content_length(start, head);
    if (body < 0 || head + (size_t)body > CAP) return -1;
    if (avail < head + (size_t)body) break;
    off += head + (size_t)body;
    memcpy(out + outlen, REPLY, sizeof(REPLY) - 1);
    outlen += sizeof(REPLY) - 1;
    if (++answers == 64) {
      if (write(c->fd, out, outlen) < 0) return -1;
      outlen = 0;
      answers = 0;
    }
  }
  if (outlen && write(c->fd, out, outlen) < 0) return -1;
  memmove(c->buf, c->buf + off, c->len - off);
  c->len -= off;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: responder PORT\n"); return 2; }
  signal(SIGPIPE, SIG_IGN);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) { perror("listen"); return 1; }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (c == NULL) {
        int fd;
        while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct conn *nc = calloc(1, sizeof *nc);
          nc->fd = fd;
          nc->buf = malloc(CAP);
          struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
        continue;
      }
      ssize_t got = read(c->fd, c->buf + c->len, CAP - c->len);
      if (got > 0) {
        c->len += (size_t)got;
        if (serve(c) == 0 && c->len < CAP) continue;
      } else if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
        continue;
      }
      close(c->fd);
      free(c->buf);
      free(c);
    }
  }
}
