//! Temporary stand-in with the agreed API; replaced by the real generator.
pub struct CaptchaImage { pub answer: String, pub png: Vec<u8>, pub width: u32, pub height: u32 }
pub const ALPHABET: &str = "ACDEFGHJKMNPRTUVWXY34679";
pub fn generate<R: rand::RngCore + rand::CryptoRng>(hardness: u8, rng: &mut R) -> CaptchaImage {
    let len = match hardness { 1 => 6, 3 => 10, _ => 9 };
    let answer = (0..len).map(|_| ALPHABET.as_bytes()[(rng.next_u32() as usize) % ALPHABET.len()] as char).collect();
    CaptchaImage { answer, png: b"\x89PNG".to_vec(), width: 320, height: 120 }
}
pub fn normalize_answer(input: &str) -> Option<String> {
    let s: String = input.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
    (s.len() <= 32 && s.chars().all(|c| ALPHABET.contains(c))).then_some(s)
}
