/* Small helpers for tests/bench/run.sh, compiled by it with cc. Not part of the build.
 *
 *   benchtool ports N
 *       Binds N TCP sockets to 127.0.0.1:0 at once and prints the N distinct free ports the
 *       kernel chose, one a line (then closes them).
 *
 *   benchtool idle PORT N PATH
 *       Opens N connections to 127.0.0.1:PORT and prints "connected N". Then, for each line
 *       read from standard input:
 *         "request": sends one "GET PATH" (keep-alive) on every connection, reads every
 *                    response in full and prints "served N ok=K" (K: status 200);
 *         "quit" or end of input: closes everything and exits 0.
 *       The connections stay open and idle between commands. Raises its own RLIMIT_NOFILE
 *       soft limit to the hard limit; fails with a message if N does not fit.
 *
 *   benchtool coherence PORT_A PORT_B PATH N
 *       How long a write through one replica takes to reach another replica's near cache.
 *       N times: GET PATH on B until its answers are hits (its near cache holds the entry),
 *       PUT PATH on A, then GET PATH on B back to back until an answer is not "X-Cache: HIT"
 *       (B read Redis, where A's invalidation deleted the entry). Prints
 *       "coherence n=N p50_us=.. p99_us=.. max_us=.." from the PUT's answer to that read's.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int usage(void) {
  fprintf(stderr, "usage: benchtool ports N | benchtool idle PORT N PATH | "
                  "benchtool coherence PORT_A PORT_B PATH N\n");
  return 2;
}

static long parse_count(const char *text, long max) {
  char *end = NULL;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < 1 || value > max) {
    return -1;
  }
  return value;
}

static int cmd_ports(long n) {
  int *fds = calloc((size_t)n, sizeof(int));
  if (fds == NULL) {
    return 1;
  }
  for (long i = 0; i < n; ++i) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(fds[i], (struct sockaddr *)&addr, &len) != 0) {
      fprintf(stderr, "benchtool ports: %s\n", strerror(errno));
      return 1;
    }
    printf("%u\n", (unsigned)ntohs(addr.sin_port));
  }
  for (long i = 0; i < n; ++i) {
    close(fds[i]);
  }
  free(fds);
  return 0;
}

/* Reads one HTTP/1.1 response with a Content-Length body from fd (blocking). Returns the
 * status code, or -1 on error; *hit (when not NULL) says whether it carried "X-Cache: HIT".
 * Good enough for cachecar's answers to a GET. */
static int read_response_cache(int fd, int *hit) {
  char buf[16384];
  size_t have = 0;
  for (;;) {
    if (have == sizeof buf) {
      return -1;
    }
    ssize_t got = read(fd, buf + have, sizeof buf - have);
    if (got <= 0) {
      if (got < 0 && errno == EINTR) {
        continue;
      }
      return -1;
    }
    have += (size_t)got;
    char *end = memmem(buf, have, "\r\n\r\n", 4);
    if (end == NULL) {
      continue;
    }
    size_t head = (size_t)(end - buf) + 4;
    long length = 0;
    for (char *p = buf; p < end; ++p) {
      if ((p == buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
        length = strtol(p + 15, NULL, 10);
      }
    }
    if (have < head + (size_t)length) {
      continue;
    }
    int status = 0;
    if (have < 12 || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
      return -1;
    }
    if (hit != NULL) {
      *hit = 0;
      for (char *p = buf; p < end; ++p) {
        if ((p == buf || p[-1] == '\n') && strncasecmp(p, "x-cache: hit", 12) == 0) {
          *hit = 1;
        }
      }
    }
    return status;
  }
}

static int read_response(int fd) { return read_response_cache(fd, NULL); }

static int connect_to(long port) {
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons((unsigned short)port);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* One request on fd; the response's status, -1 on error. */
static int exchange(int fd, const char *request, int *hit) {
  size_t len = strlen(request);
  if (write(fd, request, len) != (ssize_t)len) {
    return -1;
  }
  return read_response_cache(fd, hit);
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int cmd_coherence(long port_a, long port_b, const char *path, long n) {
  int a = connect_to(port_a), b = connect_to(port_b);
  if (a < 0 || b < 0) {
    fprintf(stderr, "benchtool coherence: connect: %s\n", strerror(errno));
    return 1;
  }
  char get[512], put[640];
  snprintf(get, sizeof get, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
  snprintf(put, sizeof put,
           "PUT %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           "Content-Length: 2\r\n\r\n{}",
           path);
  double *delays = calloc((size_t)n, sizeof(double));
  if (delays == NULL) {
    return 1;
  }
  for (long i = 0; i < n; ++i) {
    /* Hits in a row: the first one after a fill may come from Redis, and Redis's message
     * about that fill may drop B's copy once; twenty leave it in B's near cache. */
    int hits = 0, hit = 0;
    for (int tries = 0; hits < 20; ++tries) {
      if (exchange(b, get, &hit) != 200 || tries > 10000) {
        fprintf(stderr, "benchtool coherence: B does not serve %s as hits\n", path);
        return 1;
      }
      hits = hit ? hits + 1 : 0;
    }
    if (exchange(a, put, NULL) != 200) {
      fprintf(stderr, "benchtool coherence: the PUT through A failed\n");
      return 1;
    }
    const double answered = now_us();
    for (;;) {
      if (exchange(b, get, &hit) != 200) {
        fprintf(stderr, "benchtool coherence: a GET on B failed\n");
        return 1;
      }
      if (!hit) {
        break;
      }
      if (now_us() - answered > 5e6) {
        fprintf(stderr, "benchtool coherence: B still serves the old entry 5 s after the PUT\n");
        return 1;
      }
    }
    delays[i] = now_us() - answered;
  }
  qsort(delays, (size_t)n, sizeof(double), compare_doubles);
  printf("coherence n=%ld p50_us=%.0f p99_us=%.0f max_us=%.0f\n", n, delays[n / 2],
         delays[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], delays[n - 1]);
  free(delays);
  close(a);
  close(b);
  return 0;
}

static int cmd_idle(long port, long n, const char *path) {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < (rlim_t)n + 16) {
    fprintf(stderr, "benchtool idle: %ld connections need RLIMIT_NOFILE >= %ld, have %lu\n", n,
            n + 16, (unsigned long)limit.rlim_cur);
    return 1;
  }
  int *fds = calloc((size_t)n, sizeof(int));
  if (fds == NULL) {
    return 1;
  }
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons((unsigned short)port);
  for (long i = 0; i < n; ++i) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&addr, sizeof addr) != 0) {
      fprintf(stderr, "benchtool idle: connection %ld of %ld: %s\n", i + 1, n, strerror(errno));
      return 1;
    }
    int one = 1;
    setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  printf("connected %ld\n", n);
  fflush(stdout);

  char request[1024];
  int request_len = snprintf(request, sizeof request,
                             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: benchtool\r\n\r\n", path);
  if (request_len <= 0 || (size_t)request_len >= sizeof request) {
    fprintf(stderr, "benchtool idle: path too long\n");
    return 1;
  }
  char line[64];
  while (fgets(line, sizeof line, stdin) != NULL) {
    if (strncmp(line, "quit", 4) == 0) {
      break;
    }
    if (strncmp(line, "request", 7) != 0) {
      fprintf(stderr, "benchtool idle: unknown command: %s", line);
      continue;
    }
    long ok = 0;
    long served = 0;
    /* In batches, so that no more than a batch of responses waits in socket buffers. */
    const long batch = 500;
    for (long start = 0; start < n; start += batch) {
      long stop = start + batch < n ? start + batch : n;
      for (long i = start; i < stop; ++i) {
        if (write(fds[i], request, (size_t)request_len) != request_len) {
          fprintf(stderr, "benchtool idle: write on connection %ld: %s\n", i + 1, strerror(errno));
          return 1;
        }
      }
      for (long i = start; i < stop; ++i) {
        int status = read_response(fds[i]);
        if (status < 0) {
          fprintf(stderr, "benchtool idle: no complete response on connection %ld\n", i + 1);
          return 1;
        }
        ++served;
        if (status == 200) {
          ++ok;
        }
      }
    }
    printf("served %ld ok=%ld\n", served, ok);
    fflush(stdout);
  }
  /* Reset rather than close: no 10,000 sockets left in TIME_WAIT holding local ports. */
  struct linger reset = {1, 0};
  for (long i = 0; i < n; ++i) {
    setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fds[i]);
  }
  free(fds);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "ports") == 0) {
    long n = parse_count(argv[2], 64);
    return n < 0 ? usage() : cmd_ports(n);
  }
  if (argc == 5 && strcmp(argv[1], "idle") == 0) {
    long port = parse_count(argv[2], 65535);
    long n = parse_count(argv[3], 1000000);
    if (port < 0 || n < 0) {
      return usage();
    }
    return cmd_idle(port, n, argv[4]);
  }
  if (argc == 6 && strcmp(argv[1], "coherence") == 0) {
    long port_a = parse_count(argv[2], 65535);
    long port_b = parse_count(argv[3], 65535);
    long n = parse_count(argv[5], 100000);
    if (port_a < 0 || port_b < 0 || n < 0) {
      return usage();
    }
    return cmd_coherence(port_a, port_b, argv[4], n);
  }
  return usage();
}
