# Only Terraform's built-in terraform_data resource is used (it drives the
# Docker CLI through local-exec provisioners), so `terraform init` needs no
# provider download and works offline. terraform_data exists since 1.4; we
# install and test with 1.5.7 (terraform/install.sh).
terraform {
  required_version = ">= 1.4.0"
}
