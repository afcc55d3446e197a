// The judge's harness (evals/polyglot_harness.py) in place of the exercise's test/tests-main.cpp: Catch's main
// plus a listener that reports "<secret> <pass|fail> <name>" per test case on stdin, a socket the driver filled.
// The secret is read by a constructor of priority 101, before every default-priority initialiser (the judge
// refuses candidate files that set priorities or sections), with raw system calls and no heap, so a candidate's
// replacement of read/write/malloc sees nothing.
#define CATCH_CONFIG_MAIN
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include "catch.hpp"

namespace {

char secret[33];

#if defined(__x86_64__)
constexpr long kRead = 0, kWrite = 1;
long raw_syscall(long number, long fd, const void* buffer, long size) {
    long result;
    __asm__ volatile("syscall" : "=a"(result) : "a"(number), "D"(fd), "S"(buffer), "d"(size) : "rcx", "r11", "memory");
    return result;
}
#elif defined(__aarch64__)
constexpr long kRead = 63, kWrite = 64;
long raw_syscall(long number, long fd, const void* buffer, long size) {
    register long x8 __asm__("x8") = number;
    register long x0 __asm__("x0") = fd;
    register long x1 __asm__("x1") = reinterpret_cast<long>(buffer);
    register long x2 __asm__("x2") = size;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}
#else
#error "the polyglot harness knows the system calls of x86_64 and aarch64 only"
#endif

__attribute__((constructor(101))) void read_secret() {
    long n = 0;
    while (n < 32) {
        long k = raw_syscall(kRead, 0, secret + n, 32 - n);
        if (k <= 0) break;
        n += k;
    }
}

struct HrmReporter : Catch::TestEventListenerBase {
    using TestEventListenerBase::TestEventListenerBase;

    void testCaseEnded(Catch::TestCaseStats const& stats) override {
        char line[512];
        long n = 0;
        auto put = [&](const char* text, long size) {
            for (long i = 0; i < size && n < static_cast<long>(sizeof line) - 1; i++) {
                line[n++] = text[i] == '\n' ? ' ' : text[i];
            }
        };
        put(secret, 32);
        put(stats.totals.assertions.allOk() ? " pass " : " fail ", 6);
        put(stats.testInfo.name.data(), static_cast<long>(stats.testInfo.name.size()));
        line[n++] = '\n';
        for (long done = 0; done < n;) {
            long k = raw_syscall(kWrite, 0, line + done, n - done);
            if (k <= 0) break;
            done += k;
        }
        TestEventListenerBase::testCaseEnded(stats);
    }
};

}  // namespace

CATCH_REGISTER_LISTENER(HrmReporter)
