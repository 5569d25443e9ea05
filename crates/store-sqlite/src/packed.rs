//! JSON columns stored deflated (migration 8): a log entry's JSON (≈ 1.4 KB in the benchmark)
//! and a journal row's (≈ 0.66 KB) take 0.61 and 0.31 KB deflated, and every byte stored is
//! written twice (write-ahead log, then checkpoint). A column holds TEXT (rows written before,
//! and imports) or a BLOB of raw deflate; [`Json`] reads either.

use std::cell::RefCell;
use std::io::Read;

use flate2::{Compress, Compression, FlushCompress, Status};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};

thread_local! {
    /// One compressor per thread, reset for each column: a new one allocates and clears its
    /// tables (some 300 KB) each time, which cost more than the deflating itself when a cycle
    /// packs three columns per outcome.
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), false));
}

/// `json` deflated, raw (the fast level: a cycle deflates every outcome it records).
pub(crate) fn deflate(json: &str) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|c| {
        let mut z = c.borrow_mut();
        z.reset();
        let input = json.as_bytes();
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        loop {
            let read = usize::try_from(z.total_in()).unwrap_or(usize::MAX);
            let rest = input.get(read..).unwrap_or_default();
            match z
                .compress_vec(rest, &mut out, FlushCompress::Finish)
                .map_err(std::io::Error::other)?
            {
                Status::StreamEnd => return Ok(out),
                // Out of room: more, and go on where it stopped.
                Status::Ok | Status::BufError => out.reserve(out.capacity().max(64)),
            }
        }
    })
}

/// The text `deflate` made `bytes` of.
pub(crate) fn inflate(bytes: &[u8]) -> std::io::Result<String> {
    let mut json = String::new();
    flate2::read::DeflateDecoder::new(bytes).read_to_string(&mut json)?;
    Ok(json)
}

/// A JSON column's text, stored as TEXT or deflated.
#[derive(Debug)]
pub(crate) struct Json(pub String);

impl FromSql for Json {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(|s| Json(s.to_owned()))
                .map_err(|e| FromSqlError::Other(Box::new(e))),
            ValueRef::Blob(b) => inflate(b)
                .map(Json)
                .map_err(|e| FromSqlError::Other(Box::new(e))),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

/// `json` as the column stores it; a store error names `what`.
pub(crate) fn pack(
    path: &std::path::Path,
    what: &'static str,
    json: &str,
) -> exo_writeback_store::Result<Vec<u8>> {
    deflate(json).map_err(|e| exo_writeback_store::StoreError::Unstorable {
        path: path.to_path_buf(),
        what,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_deflated_columns_read_the_same() {
        let conn = rusqlite::Connection::open_in_memory().expect("db");
        let json = r#"{"dn":"CN=Ünïcödé,OU=x","new":["a","a","a"]}"#;
        let read = |v: &dyn rusqlite::ToSql| -> String {
            conn.query_row("SELECT ?1", [v], |r| r.get::<_, Json>(0))
                .expect("read")
                .0
        };
        assert_eq!(read(&json), json);
        assert_eq!(read(&deflate(json).expect("deflate")), json);
        let err = conn.query_row("SELECT x'00ff'", [], |r| r.get::<_, Json>(0));
        assert!(err.is_err(), "not deflate: {err:?}");
    }

    /// The reused compressor packs as a new one would, whatever came before on the thread,
    /// from the empty text to texts many times its output's first allocation.
    #[test]
    fn a_reused_compressor_packs_as_a_new_one() {
        use std::io::Write;
        let texts: Vec<String> = (0..40)
            .map(|i| {
                (0..i * i * 7)
                    .map(|j| char::from(b'a' + ((j * 31 + i) % 26) as u8))
                    .collect()
            })
            .chain([String::new(), "x".repeat(200_000)])
            .collect();
        for text in texts.iter().chain(texts.iter().rev()) {
            let packed = deflate(text).expect("deflate");
            let mut fresh = flate2::write::DeflateEncoder::new(Vec::new(), Compression::fast());
            fresh.write_all(text.as_bytes()).expect("write");
            assert_eq!(
                packed,
                fresh.finish().expect("finish"),
                "{} bytes",
                text.len()
            );
            assert_eq!(&inflate(&packed).expect("inflate"), text);
        }
    }
}
