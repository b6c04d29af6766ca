//! Developer aid: instrument a .wat/.wasm file and print the result as text
//! (`--fork-import m.n` to pick the fork import; on invalid output, prints
//! the unvalidated module; `OUT=path` writes the output, `OUT_INPUT=path`
//! the compiled input).
fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: dump <file.wat|file.wasm> [m.n]");
    let bytes = wat::parse_file(&path).expect("parse");
    if let Some(p) = std::env::var_os("OUT_INPUT") {
        std::fs::write(p, &bytes).expect("write the input");
    }
    if std::env::var_os("PRINT_ONLY").is_some() {
        let mut cfg = wasmprinter::Config::new();
        cfg.print_offsets(true);
        let mut out = String::new();
        let _ = cfg.print(&bytes, &mut wasmprinter::PrintFmtWrite(&mut out));
        println!("{out}");
        return;
    }
    let mut config = forkify_instrument::Config::default();
    if let Some(imp) = args.next() {
        config.fork_imports = vec![imp.parse().expect("module.name")];
    }
    match forkify_instrument::instrument(&bytes, &config) {
        Ok(out) => {
            if let Some(path) = std::env::var_os("OUT") {
                std::fs::write(path, &out.bytes).expect("write");
            }
            println!("{}", wasmprinter::print_bytes(&out.bytes).expect("print"));
            eprintln!("{:#?}", out.report);
        }
        Err(e) => eprintln!("error: {e}"),
    }
}
