//! `face_identities`: a person the system can recognise (optionally linked to a user account).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "face_identities")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The user account in the users database this face belongs to, if any (by value).
    pub user_id: Option<i64>,
    /// Name shown in overlays.
    pub display_name: String,
    /// Free-form notes for administrators.
    pub notes: Option<String>,
    /// `person` for people to recognise, `unknown` for clustered strangers.
    pub kind: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::face_embedding::Entity")]
    FaceEmbedding,
    #[sea_orm(has_one = "super::face_privacy_policy::Entity")]
    FacePrivacyPolicy,
    #[sea_orm(has_many = "super::face_match::Entity")]
    FaceMatch,
}

impl Related<super::face_embedding::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::FaceEmbedding.def()
    }
}

impl Related<super::face_privacy_policy::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::FacePrivacyPolicy.def()
    }
}

impl Related<super::face_match::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::FaceMatch.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::face_embedding::Entity")]
    FaceEmbedding,
    #[sea_orm(entity = "super::face_privacy_policy::Entity")]
    FacePrivacyPolicy,
    #[sea_orm(entity = "super::face_match::Entity")]
    FaceMatch,
}

impl ActiveModelBehavior for ActiveModel {}
