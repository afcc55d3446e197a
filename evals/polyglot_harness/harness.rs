
// The judge's harness (evals/polyglot_harness.py), appended to each test file. Each #[test] starts by creating a
// Guard: the first one reads the run's secret from stdin (a socket the driver filled; no candidate code runs
// before the first test), and each Guard's drop reports "<secret> <pass|fail> <name>" on the same socket: a
// pass only if the test is not unwinding from a panic. A test that exits the process reports nothing.
#[allow(dead_code)]
mod hrm_harness {
    use std::io::{Read, Write};
    use std::os::unix::io::FromRawFd;
    use std::sync::{Mutex, OnceLock};

    static CHANNEL: OnceLock<Mutex<(String, std::fs::File)>> = OnceLock::new();

    fn channel() -> &'static Mutex<(String, std::fs::File)> {
        CHANNEL.get_or_init(|| {
            let mut file = unsafe { std::fs::File::from_raw_fd(0) };
            let (mut secret, mut n) = ([0u8; 32], 0);
            while n < secret.len() {
                match file.read(&mut secret[n..]) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => n += k,
                }
            }
            Mutex::new((String::from_utf8_lossy(&secret[..n]).into_owned(), file))
        })
    }

    pub struct Guard(&'static str);

    impl Guard {
        pub fn new(name: &'static str) -> Guard {
            channel();
            Guard(name)
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            let status = if std::thread::panicking() { "fail" } else { "pass" };
            let mut held = channel().lock().unwrap_or_else(|e| e.into_inner());
            let (secret, file) = &mut *held;
            let _ = file.write_all(format!("{} {} {}\n", secret, status, self.0).as_bytes());
        }
    }
}
