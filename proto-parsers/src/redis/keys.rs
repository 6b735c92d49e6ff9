//! Where a command's first key sits, for the commands policies name most (`keys:` globs).
//! Commands not listed report no key: an unknown command is judged by name alone, never by
//! a guessed argument.

/// Where the first key of a command is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeySpec {
    /// No key (PING, AUTH, HELLO, FLUSHALL, CONFIG, INFO, ...), or a command not in the table.
    None,
    /// The key is argument `n` (0 = the command itself).
    At(u32),
    /// Argument `n` holds `numkeys`; when it is at least 1, the first key is argument `n + 1`.
    Numkeys(u32),
    /// Enters the publish/subscribe or monitor mode: from here on the server sends messages
    /// that answer no command, so replies stop being paired.
    Subscribe,
}

/// Longest command name the table holds; longer names are unknown commands.
pub(crate) const MAX_NAME: usize = 24;

/// Looks a command name up, case-insensitively.
pub(crate) fn lookup(name: &[u8]) -> KeySpec {
    let mut up = [0u8; MAX_NAME];
    if name.len() > MAX_NAME {
        return KeySpec::None;
    }
    for (d, s) in up.iter_mut().zip(name) {
        *d = s.to_ascii_uppercase();
    }
    let up = up.get(..name.len()).unwrap_or_default();
    match up {
        b"GET" | b"SET" | b"SETNX" | b"SETEX" | b"PSETEX" | b"GETSET" | b"GETDEL" | b"GETEX"
        | b"APPEND" | b"STRLEN" | b"INCR" | b"DECR" | b"INCRBY" | b"DECRBY" | b"INCRBYFLOAT"
        | b"GETRANGE" | b"SETRANGE" | b"SUBSTR" | b"LCS" | b"DEL" | b"UNLINK" | b"EXISTS"
        | b"EXPIRE" | b"PEXPIRE" | b"EXPIREAT" | b"PEXPIREAT" | b"EXPIRETIME" | b"PEXPIRETIME"
        | b"TTL" | b"PTTL" | b"PERSIST" | b"TYPE" | b"RENAME" | b"RENAMENX" | b"DUMP"
        | b"RESTORE" | b"TOUCH" | b"COPY" | b"MOVE" | b"SORT" | b"SORT_RO" | b"WATCH" | b"MGET"
        | b"MSET" | b"MSETNX" | b"HGET" | b"HSET" | b"HSETNX" | b"HMSET" | b"HMGET" | b"HDEL"
        | b"HGETALL" | b"HKEYS" | b"HVALS" | b"HLEN" | b"HEXISTS" | b"HINCRBY"
        | b"HINCRBYFLOAT" | b"HSCAN" | b"HSTRLEN" | b"HRANDFIELD" | b"LPUSH" | b"RPUSH"
        | b"LPUSHX" | b"RPUSHX" | b"LPOP" | b"RPOP" | b"LLEN" | b"LRANGE" | b"LINDEX" | b"LSET"
        | b"LREM" | b"LTRIM" | b"LINSERT" | b"LPOS" | b"RPOPLPUSH" | b"LMOVE" | b"BLPOP"
        | b"BRPOP" | b"BLMOVE" | b"BRPOPLPUSH" | b"SADD" | b"SREM" | b"SMEMBERS" | b"SISMEMBER"
        | b"SMISMEMBER" | b"SCARD" | b"SPOP" | b"SRANDMEMBER" | b"SMOVE" | b"SSCAN" | b"SINTER"
        | b"SUNION" | b"SDIFF" | b"SINTERSTORE" | b"SUNIONSTORE" | b"SDIFFSTORE" | b"ZADD"
        | b"ZREM" | b"ZSCORE" | b"ZMSCORE" | b"ZINCRBY" | b"ZCARD" | b"ZCOUNT" | b"ZLEXCOUNT"
        | b"ZRANGE" | b"ZREVRANGE" | b"ZRANGEBYSCORE" | b"ZREVRANGEBYSCORE" | b"ZRANGEBYLEX"
        | b"ZREVRANGEBYLEX" | b"ZRANK" | b"ZREVRANK" | b"ZREMRANGEBYRANK" | b"ZREMRANGEBYSCORE"
        | b"ZREMRANGEBYLEX" | b"ZSCAN" | b"ZPOPMIN" | b"ZPOPMAX" | b"BZPOPMIN" | b"BZPOPMAX"
        | b"ZRANDMEMBER" | b"ZRANGESTORE" | b"ZUNIONSTORE" | b"ZINTERSTORE" | b"ZDIFFSTORE"
        | b"XADD" | b"XRANGE" | b"XREVRANGE" | b"XLEN" | b"XDEL" | b"XTRIM" | b"XACK"
        | b"XCLAIM" | b"XAUTOCLAIM" | b"XPENDING" | b"XSETID" | b"SETBIT" | b"GETBIT"
        | b"BITCOUNT" | b"BITPOS" | b"BITFIELD" | b"BITFIELD_RO" | b"PFADD" | b"PFCOUNT"
        | b"PFMERGE" | b"GEOADD" | b"GEODIST" | b"GEOHASH" | b"GEOPOS" | b"GEORADIUS"
        | b"GEORADIUS_RO" | b"GEORADIUSBYMEMBER" | b"GEOSEARCH" | b"GEOSEARCHSTORE" => {
            KeySpec::At(1)
        }
        // Subcommand first: OBJECT ENCODING key, MEMORY USAGE key, BITOP AND dest src...,
        // XGROUP CREATE key, XINFO STREAM key.
        b"OBJECT" | b"MEMORY" | b"BITOP" | b"XGROUP" | b"XINFO" => KeySpec::At(2),
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" | b"BLMPOP"
        | b"BZMPOP" => KeySpec::Numkeys(2),
        b"ZUNION" | b"ZINTER" | b"ZDIFF" | b"ZINTERCARD" | b"SINTERCARD" | b"LMPOP" | b"ZMPOP" => {
            KeySpec::Numkeys(1)
        }
        b"SUBSCRIBE" | b"PSUBSCRIBE" | b"SSUBSCRIBE" | b"MONITOR" | b"SYNC" | b"PSYNC" => {
            KeySpec::Subscribe
        }
        _ => KeySpec::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_commands_and_case() {
        assert_eq!(lookup(b"get"), KeySpec::At(1));
        assert_eq!(lookup(b"MGET"), KeySpec::At(1));
        assert_eq!(lookup(b"Object"), KeySpec::At(2));
        assert_eq!(lookup(b"EVAL"), KeySpec::Numkeys(2));
        assert_eq!(lookup(b"AUTH"), KeySpec::None);
        assert_eq!(lookup(b"HELLO"), KeySpec::None);
        assert_eq!(lookup(b"FLUSHALL"), KeySpec::None);
        assert_eq!(lookup(b"CONFIG"), KeySpec::None);
        assert_eq!(lookup(b"subscribe"), KeySpec::Subscribe);
        assert_eq!(lookup(&[b'G'; 100]), KeySpec::None);
        assert_eq!(lookup(b""), KeySpec::None);
    }
}
