//! Passes the nginx feature, OS and version flags detected by `nginx-sys` to this crate,
//! as ngx's own build script does (cargo only forwards `DEP_NGINX_*` to direct dependents).
fn main() {
    builtin_catalogs();
    builtin_pictures();
    println!("cargo::rerun-if-env-changed=DEP_NGINX_FEATURES_CHECK");
    println!(
        "cargo::rustc-check-cfg=cfg(ngx_feature, values({}))",
        std::env::var("DEP_NGINX_FEATURES_CHECK").unwrap_or("any()".to_string())
    );
    println!("cargo::rerun-if-env-changed=DEP_NGINX_FEATURES");
    if let Ok(features) = std::env::var("DEP_NGINX_FEATURES") {
        for feature in features.split(',').map(str::trim) {
            println!("cargo::rustc-cfg=ngx_feature=\"{feature}\"");
        }
    }
    println!("cargo::rerun-if-env-changed=DEP_NGINX_OS_CHECK");
    println!(
        "cargo::rustc-check-cfg=cfg(ngx_os, values({}))",
        std::env::var("DEP_NGINX_OS_CHECK").unwrap_or("any()".to_string())
    );
    println!("cargo::rerun-if-env-changed=DEP_NGINX_OS");
    if let Ok(os) = std::env::var("DEP_NGINX_OS") {
        println!("cargo::rustc-cfg=ngx_os=\"{os}\"");
    }
    // nginx 1.23 links a request's `Cookie` headers in a list; 1.22 (Debian 12) keeps an array.
    println!("cargo::rustc-check-cfg=cfg(ngx_cookie_list)");
    println!("cargo::rerun-if-env-changed=DEP_NGINX_VERSION_NUMBER");
    let number = std::env::var("DEP_NGINX_VERSION_NUMBER")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if number.is_some_and(|n| n >= 1_023_000) {
        println!("cargo::rustc-cfg=ngx_cookie_list");
    }
    // The nginx version the module is built against, for the log line at start-up.
    println!("cargo::rerun-if-env-changed=DEP_NGINX_VERSION");
    if let Ok(version) = std::env::var("DEP_NGINX_VERSION") {
        println!("cargo::rustc-env=CAPTCHAIFY_NGINX_VERSION={version}");
    }
}

/// Lists `templates/i18n/*.txt` for `src/pages/i18n.rs`: every file there is a built-in
/// language, so adding a language is adding a file. English, the reference, comes first.
fn builtin_catalogs() {
    let dir = manifest_dir().join("templates/i18n");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut tags: Vec<String> = std::fs::read_dir(&dir)
        .expect("templates/i18n")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            println!("cargo::rerun-if-changed={}", e.path().display());
            name.strip_suffix(".txt").map(str::to_owned)
        })
        .collect();
    tags.sort_by_key(|t| (t != "en", t.clone()));
    let mut out = String::from("&[\n");
    for tag in &tags {
        let path = dir.join(format!("{tag}.txt"));
        out.push_str(&format!(
            "    ({tag:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("]\n");
    let target =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("catalogs.rs");
    std::fs::write(target, out).expect("write catalogs.rs");
}

/// Lists `pictures/emoji` and `pictures/animals` for `src/challenge/picture/mod.rs`, which
/// compiles them in: `(motif folder, file name, bytes)`, sorted, with the set's own files
/// (`confusable.txt`) under an empty motif. Only `names.txt` and PNG files are taken.
fn builtin_pictures() {
    let root = manifest_dir().join("pictures");
    println!("cargo::rerun-if-changed={}", root.display());
    let mut out = String::new();
    for (set, constant) in [("emoji", "EMOJI"), ("animals", "ANIMALS")] {
        let dir = root.join(set);
        println!("cargo::rerun-if-changed={}", dir.display());
        let mut entries: Vec<(String, String, std::path::PathBuf)> = Vec::new();
        let confusable = dir.join("confusable.txt");
        if confusable.is_file() {
            entries.push((String::new(), "confusable.txt".into(), confusable));
        }
        let mut motifs: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        motifs.sort();
        for motif in motifs {
            println!("cargo::rerun-if-changed={}", motif.display());
            let key = motif.file_name().unwrap().to_string_lossy().into_owned();
            let mut files: Vec<_> = std::fs::read_dir(&motif)
                .expect("a picture folder")
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    name == "names.txt" || name.to_ascii_lowercase().ends_with(".png")
                })
                .collect();
            files.sort();
            for file in files {
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                entries.push((key.clone(), name, file));
            }
        }
        out.push_str(&format!(
            "pub static {constant}: &[(&str, &str, &[u8])] = &[\n"
        ));
        for (motif, name, path) in entries {
            out.push_str(&format!(
                "    ({motif:?}, {name:?}, include_bytes!({:?})),\n",
                path.display().to_string()
            ));
        }
        out.push_str("];\n");
    }
    let target = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("pictures.rs");
    std::fs::write(target, out).expect("OUT_DIR is writable");
}

/// The package's folder, as cargo says it for this run. Not `env!`, which would bake in the
/// folder the build script was first compiled in: a target directory copied to another
/// checkout would then keep reading the first checkout's templates and pictures.
fn manifest_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"))
}
