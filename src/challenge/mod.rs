//! Challenges a person can answer and a program cannot: the captcha image, the audio captcha, and the signed
//! tokens that carry a challenge and, once it is solved, the client's pass.

pub mod audio;
pub mod compose;
pub mod flow;
pub mod image;
pub mod pass_cache;
pub mod token;
