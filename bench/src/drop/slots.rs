//! Where a Redis command would run on a Redis Cluster: its keys (read from a `MONITOR` line)
//! and their hash slots, computed as the cluster computes them (CRC16/XMODEM of the key's hash
//! tag, modulo 16,384), so the bench can attribute each command of an attempt to a slot while
//! running against one plain Redis server.

/// Hash slots of a Redis Cluster.
const SLOTS: u16 = 16_384;

/// The slot a cluster keeps `key` in (`CLUSTER KEYSLOT`): the hash of the text between the
/// first `{` and the next `}` when that text is not empty, of the whole key otherwise.
pub(super) fn key_slot(key: &[u8]) -> u16 {
    crc16_xmodem(hash_tag(key)) % SLOTS
}

/// The part of `key` that decides its slot.
pub(super) fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&byte| byte == b'{')
        && let Some(length) = key[open + 1..].iter().position(|&byte| byte == b'}')
        && length > 0
    {
        return &key[open + 1..open + 1 + length];
    }
    key
}

/// CRC16/XMODEM (polynomial 0x1021, initial value 0), the checksum Redis Cluster uses.
fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 == 0 {
                crc << 1
            } else {
                (crc << 1) ^ 0x1021
            };
        }
    }
    crc
}

/// One command as `MONITOR` reports it: `1701.5 [0 127.0.0.1:5012] "hmget" "k" "f"`. Commands a
/// script runs come from the client `lua`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct MonitorLine {
    /// `lua` for a command run by a script; the client's address otherwise.
    pub(super) client: String,
    /// Lower case.
    pub(super) command: String,
    pub(super) args: Vec<Vec<u8>>,
}

impl MonitorLine {
    /// Parses one line of the `MONITOR` feed (the `+` of the status reply already removed);
    /// `None` for anything else (`OK`, a truncated line).
    pub(super) fn parse(line: &str) -> Option<Self> {
        let (_, rest) = line.split_once(" [")?;
        let (source, rest) = rest.split_once("] ")?;
        let client = source.split_once(' ')?.1.to_owned();
        let mut words = unquote_words(rest)?.into_iter();
        let command = String::from_utf8_lossy(&words.next()?).to_ascii_lowercase();
        Some(Self {
            client,
            command,
            args: words.collect(),
        })
    }

    pub(super) fn is_from_script(&self) -> bool {
        self.client == "lua"
    }

    /// The keys this command names, for the commands a checkout and the floor send; `None`
    /// for a command this table does not know (reported as such, never guessed).
    pub(super) fn keys(&self) -> Option<Vec<&[u8]>> {
        let args = &self.args;
        let all = || args.iter().map(Vec::as_slice).collect();
        let first = || {
            args.first()
                .map(|key| vec![key.as_slice()])
                .unwrap_or_default()
        };
        Some(match self.command.as_str() {
            "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => {
                let count: usize = std::str::from_utf8(args.get(1)?).ok()?.parse().ok()?;
                args.get(2..2 + count)?.iter().map(Vec::as_slice).collect()
            }
            "exists" | "del" | "unlink" | "touch" | "mget" => all(),
            "get" | "set" | "setex" | "psetex" | "getex" | "getdel" | "incr" | "incrby"
            | "decr" | "decrby" | "expire" | "pexpire" | "ttl" | "pttl" | "type" | "hget"
            | "hmget" | "hgetall" | "hset" | "hmset" | "hdel" | "hincrby" | "hexists" | "sadd"
            | "sismember" | "srem" | "smembers" | "zadd" | "zscore" | "zrem" | "strlen" => first(),
            "info" | "ping" | "echo" | "script" | "client" | "hello" | "select" | "command"
            | "monitor" | "multi" | "exec" | "scan" => Vec::new(),
            _ => return None,
        })
    }
}

/// The quoted words of a `MONITOR` line, unescaped as Redis escapes them (`sdscatrepr`).
fn unquote_words(text: &str) -> Option<Vec<Vec<u8>>> {
    let bytes = text.as_bytes();
    let mut words = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b' ' => at += 1,
            b'"' => {
                let mut word = Vec::new();
                at += 1;
                loop {
                    match *bytes.get(at)? {
                        b'"' => break,
                        b'\\' => {
                            let escaped = *bytes.get(at + 1)?;
                            at += 2;
                            word.push(match escaped {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'a' => 0x07,
                                b'b' => 0x08,
                                b'x' => {
                                    let hex = std::str::from_utf8(bytes.get(at..at + 2)?).ok()?;
                                    at += 2;
                                    u8::from_str_radix(hex, 16).ok()?
                                }
                                other => other,
                            });
                        }
                        byte => {
                            word.push(byte);
                            at += 1;
                        }
                    }
                }
                at += 1;
                words.push(word);
            }
            _ => return None,
        }
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_the_clusters() {
        // Each figure is what `CLUSTER KEYSLOT` answered on a Redis 7.0 cluster node.
        for (key, slot) in [
            ("foo", 12_182),
            ("bar", 5_061),
            ("123456789", 12_739),
            ("{loaded}:blacklist", 6_382),
            ("bench-drop:reservation:stock:{p1}", 11_819),
            ("a{}b", 13_694),
            ("{}{x}", 3_257),
            ("x{y}{z}", 12_222),
            ("bench-drop:floor:bench:drop-floor", 772),
        ] {
            assert_eq!(key_slot(key.as_bytes()), slot, "{key}");
        }
    }

    #[test]
    fn monitor_lines_are_read_with_their_keys() {
        let line = MonitorLine::parse(
            r#"1733300000.123456 [0 127.0.0.1:50312] "EVALSHA" "ab12" "2" "c:{u7}" "bl:{u7}:x\"y\x41" "30""#,
        )
        .unwrap();
        assert_eq!(line.client, "127.0.0.1:50312");
        assert_eq!(line.command, "evalsha");
        assert!(!line.is_from_script());
        assert_eq!(
            line.keys().unwrap(),
            vec![b"c:{u7}".as_slice(), b"bl:{u7}:x\"yA".as_slice()]
        );

        let inner = MonitorLine::parse(r#"1733300000.2 [0 lua] "incr" "c:{u7}""#).unwrap();
        assert!(inner.is_from_script());
        assert_eq!(inner.keys().unwrap(), vec![b"c:{u7}".as_slice()]);

        let exists =
            MonitorLine::parse(r#"1.0 [0 127.0.0.1:1] "exists" "{loaded}:a" "{loaded}:b""#)
                .unwrap();
        assert_eq!(exists.keys().unwrap().len(), 2);
        let unknown = MonitorLine::parse(r#"1.0 [0 127.0.0.1:1] "xadd" "s" "*""#).unwrap();
        assert_eq!(unknown.keys(), None);
        assert_eq!(MonitorLine::parse("OK"), None);
    }
}
