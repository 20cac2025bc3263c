//! Face recognition at run time (issue 12).
//!
//! - `face_embeddings`: `crop`, the enrolled face as a small JPEG sealed with the server key
//!   (like `vector`), and `match_id`, the face event the example was taken from when a user
//!   named a recorded face.
//! - `face_matches`: `score` (cosine similarity to the matched identity, or the best one when
//!   unknown), `frame_width`/`frame_height` (the frame the box is in), `crop` and `embedding`
//!   (sealed; the embedding lets a user name the face later), `model` (the embedder that made
//!   it) and `labelled_at` (when a user confirmed or rejected the match); the index on
//!   (`camera_id`, `seen_at`) for the timeline exists since the initial migration.
//!
//! SQLite alters one column per statement, so every column is its own `ALTER TABLE`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::db::schema_util::{add, c, drop_col, ts_null};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const ADDED: [(&str, &[&str]); 2] = [
    ("face_embeddings", &["crop", "match_id"]),
    (
        "face_matches",
        &["score", "frame_width", "frame_height", "crop", "embedding", "model", "labelled_at"],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let b = m.get_database_backend();
        let t = "face_embeddings";
        add(m, t, blob_null(c("crop"))).await?;
        add(m, t, big_integer_null(c("match_id"))).await?;

        let t = "face_matches";
        add(m, t, double(c("score")).default(0.0).to_owned()).await?;
        add(m, t, integer(c("frame_width")).default(0).to_owned()).await?;
        add(m, t, integer(c("frame_height")).default(0).to_owned()).await?;
        add(m, t, blob_null(c("crop"))).await?;
        add(m, t, blob_null(c("embedding"))).await?;
        add(m, t, string_len_null(c("model"), 128)).await?;
        add(m, t, ts_null(b, c("labelled_at"))).await?;
        // The (camera_id, seen_at) index exists since the initial migration.
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, cols) in ADDED.iter().rev() {
            for col in cols.iter().rev() {
                drop_col(m, table, col).await?;
            }
        }
        Ok(())
    }
}
