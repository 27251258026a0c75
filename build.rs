//! Passes the nginx feature, OS and version flags detected by `nginx-sys` to this crate,
//! as ngx's own build script does (cargo only forwards `DEP_NGINX_*` to direct dependents).
fn main() {
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
    // The nginx version the module is built against, for the log line at start-up.
    println!("cargo::rerun-if-env-changed=DEP_NGINX_VERSION");
    if let Ok(version) = std::env::var("DEP_NGINX_VERSION") {
        println!("cargo::rustc-env=CAPTCHAIFY_NGINX_VERSION={version}");
    }
}
