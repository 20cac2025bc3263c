//! The `faces` database: enrolled identities, their embeddings, privacy policy and recognition
//! matches. Isolated from the other two so biometric data can live on its own server with its
//! own credentials. `user_id`, `camera_id` and `segment_id` columns point into the other
//! databases by value only (no foreign keys, no joins).

#[allow(missing_docs)]
pub mod face_embedding;
#[allow(missing_docs)]
pub mod face_identity;
#[allow(missing_docs)]
pub mod face_match;
#[allow(missing_docs)]
pub mod face_privacy_policy;
pub mod migration;
